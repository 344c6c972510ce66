package etcdstore

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/pkg/errkind"
)

// TestLimitsAndGuards: what a transaction may read and write, and the
// guards a leader sets.
func TestLimitsAndGuards(t *testing.T) {
	putAgents := func(n int) func(model.Tx) error {
		return func(tx model.Tx) error {
			for i := range n {
				if err := tx.PutAgent(&model.Agent{Name: fmt.Sprintf("fe-%03d", i)}); err != nil {
					return err
				}
			}
			return nil
		}
	}
	cases := []struct {
		name    string
		guards  func(s *Store) []clientv3.Cmp
		seed    func(model.Tx) error
		update  func(model.Tx) error
		want    error
		message string
		agents  int // agents stored afterwards
	}{
		{name: "more writes than --max-txn-ops fail and write nothing", update: putAgents(DefaultMaxTxnOps + 1),
			want: errkind.ResourceExhausted, message: "at most 128 operations", agents: 0},
		{name: "as many writes as --max-txn-ops", update: putAgents(DefaultMaxTxnOps), agents: DefaultMaxTxnOps},
		{name: "more keys read than --max-txn-ops: coarser comparisons", seed: putAgents(100),
			update: func(tx model.Tx) error {
				for i := range 100 {
					if _, err := tx.Agent(fmt.Sprintf("fe-%03d", i)); err != nil {
						return err
					}
				}
				for i := range 50 {
					if _, err := tx.Environment(fmt.Sprintf("e-%d", i)); !errors.Is(err, errkind.NotFound) {
						return err
					}
				}
				return tx.PutAgent(&model.Agent{Name: "fe-new"})
			}, agents: 101},
		{name: "a guard that holds", guards: func(s *Store) []clientv3.Cmp {
			return []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(s.cfg.Prefix+"leader"), "=", 0)}
		}, update: putAgents(1), agents: 1},
		{name: "a guard that fails: Aborted, nothing written", guards: func(s *Store) []clientv3.Cmp {
			return []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(s.cfg.Prefix+"leader"), ">", 0)}
		}, update: putAgents(1), want: errkind.Aborted, message: "guard", agents: 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := open(t, newPrefix())
			if c.seed != nil {
				if err := s.Update(c.seed); err != nil {
					t.Fatal(err)
				}
			}
			if c.guards != nil {
				s.SetGuards(c.guards(s)...)
			}
			err := s.Update(c.update)
			if c.want == nil && err != nil || !errors.Is(err, c.want) || !strings.Contains(fmt.Sprint(err), c.message) {
				t.Fatalf("update: %v; want %v with %q", err, c.want, c.message)
			}
			s.SetGuards()
			if err := s.View(func(tx model.Tx) error {
				as, err := tx.Agents()
				if len(as) != c.agents {
					t.Errorf("%d agents stored, want %d", len(as), c.agents)
				}
				return err
			}); err != nil {
				t.Fatal(err)
			}
		})
	}
}
