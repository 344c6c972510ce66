package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/pkg/manifest"
)

// writers is how many goroutines update at once.
const writers = 8

// concurrently runs n writers at once, each running rounds updates,
// update(w, i) the i-th of writer w; it returns their errors joined.
func concurrently(s model.Store, n, rounds int, update func(w, i int) func(model.Tx) error) error {
	var wg sync.WaitGroup
	errs := make([]error, n)
	for w := range n {
		wg.Go(func() {
			for i := range rounds {
				if errs[w] = s.Update(update(w, i)); errs[w] != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func concurrencyCases() []Case {
	return []Case{
		{"concurrent updates lose nothing", func(t *testing.T, s model.Store) {
			update(t, s, func(tx model.Tx) error {
				return tx.PutDeployment(&model.Deployment{ID: "d-1", Environment: "production"})
			})
			if err := concurrently(s, writers, 5, func(w, i int) func(model.Tx) error {
				return func(tx model.Tx) error {
					d, err := tx.Deployment("d-1")
					if err != nil {
						return err
					}
					d.History = append(d.History, model.Transition{State: model.Planned, Time: t0, Actor: fmt.Sprintf("w%d-%d", w, i)})
					return tx.PutDeployment(d)
				}
			}); err != nil {
				t.Fatalf("updates of one process failed: %v", err)
			}
			view(t, s, func(tx model.Tx) error {
				d, err := tx.Deployment("d-1")
				if err == nil && len(d.History) != writers*5 {
					t.Errorf("%d history entries after %d updates: updates were lost", len(d.History), writers*5)
				}
				return err
			})
		}},
		{"a view is a snapshot", func(t *testing.T, s model.Store) {
			// A large chunk first, so that bbolt's file is mapped large
			// enough for the update below not to wait for the view.
			big := bytes.Repeat([]byte("x"), 4<<20)
			update(t, s, func(tx model.Tx) error {
				return errors.Join(tx.PutChunk(manifest.HashChunk(big), big),
					tx.PutEnvironment(environment("a")), tx.PutEnvironment(environment("b")))
			})
			changed := make(chan error, 1)
			view(t, s, func(tx model.Tx) error {
				if _, err := tx.Environment("a"); err != nil {
					return err
				}
				go func() {
					changed <- s.Update(func(tx model.Tx) error {
						a, b := environment("a"), environment("b")
						a.TwoStage, b.TwoStage = false, false
						return errors.Join(tx.PutEnvironment(a), tx.PutEnvironment(b), tx.PutEnvironment(environment("c")))
					})
				}()
				if err := <-changed; err != nil {
					return err
				}
				b, err := tx.Environment("b")
				if err != nil {
					return err
				}
				envs, err := tx.Environments()
				if !b.TwoStage || len(envs) != 2 {
					t.Errorf("a view saw an update committed after its first read: b.two_stage %v, %d environments", b.TwoStage, len(envs))
				}
				return err
			})
			view(t, s, func(tx model.Tx) error {
				envs, err := tx.Environments()
				if len(envs) != 3 || envs[1].TwoStage {
					t.Errorf("after the update: %d environments, b.two_stage %v", len(envs), len(envs) > 1 && envs[1].TwoStage)
				}
				return err
			})
		}},
	}
}
