// Package storetest is the contract of model.Store: one table of
// operations and expected results, and the concurrency cases, that every
// implementation passes (controlplane/store on bbolt, controlplane/etcdstore
// on a real etcd). An implementation's tests call Run with a function that
// opens a new, empty store.
package storetest

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/pkg/errkind"
	"github.com/cutover-dev/cutover/pkg/manifest"
)

// Case is one case of the contract: it runs on a new, empty store.
type Case struct {
	Name string
	Run  func(t *testing.T, s model.Store)
}

// Run runs every case of the contract, each on a store open returns (a new,
// empty one each time).
func Run(t *testing.T, open func(t *testing.T) model.Store) {
	for _, c := range Cases() {
		t.Run(c.Name, func(t *testing.T) { c.Run(t, open(t)) })
	}
}

// Cases returns the contract's cases.
func Cases() []Case {
	return append(append(append(recordCases(), orderCases()...), concurrencyCases()...), agentCases()...)
}

// update and view fail the test on an error.
func update(t *testing.T, s model.Store, fn func(model.Tx) error) {
	t.Helper()
	if err := s.Update(fn); err != nil {
		t.Fatalf("update: %v", err)
	}
}

func view(t *testing.T, s model.Store, fn func(model.Tx) error) {
	t.Helper()
	if err := s.View(fn); err != nil {
		t.Fatalf("view: %v", err)
	}
}

// roundTrip is a record kind: put writes the fixture, get reads it back.
type roundTrip struct {
	kind string
	put  func(model.Tx) error
	get  func(model.Tx) (any, error)
	want any
}

func roundTrips() []roundTrip {
	big := bytes.Repeat([]byte("manifest "), 400_000) // 3.6 MB: more than one etcd request
	return []roundTrip{
		{"environment", func(tx model.Tx) error { return tx.PutEnvironment(environment("production")) },
			func(tx model.Tx) (any, error) { return tx.Environment("production") }, environment("production")},
		{"application", func(tx model.Tx) error { return tx.PutApplication(application("hello")) },
			func(tx model.Tx) (any, error) { return tx.Application("hello") }, application("hello")},
		{"release", func(tx model.Tx) error { return tx.PutRelease(release("r-1", "hello", t0), []byte("m1")) },
			func(tx model.Tx) (any, error) { return tx.Release("r-1") }, release("r-1", "hello", t0)},
		{"manifest", func(tx model.Tx) error { return tx.PutRelease(release("r-1", "hello", t0), []byte("m1")) },
			func(tx model.Tx) (any, error) { return tx.Manifest("r-1") }, []byte("m1")},
		{"large manifest", func(tx model.Tx) error { return tx.PutRelease(release("r-big", "hello", t0), big) },
			func(tx model.Tx) (any, error) { return tx.Manifest("r-big") }, big},
		{"deployment", func(tx model.Tx) error {
			id, err := tx.NextDeploymentID()
			if err != nil {
				return err
			}
			return tx.PutDeployment(deployment(id, "production"))
		}, func(tx model.Tx) (any, error) { return tx.Deployment("d-1") }, deployment("d-1", "production")},
		{"sql plan", func(tx model.Tx) error { return tx.PutSQLPlan("d-1", []byte(`{"sql":"select 1"}`)) },
			func(tx model.Tx) (any, error) { return tx.SQLPlan("d-1") }, []byte(`{"sql":"select 1"}`)},
		{"agent", func(tx model.Tx) error { return tx.PutAgent(agent("fe-1", "production")) },
			func(tx model.Tx) (any, error) { return tx.Agent("fe-1") }, agent("fe-1", "production")},
		{"operator token", func(tx model.Tx) error { return tx.PutOperatorToken(operatorToken("t-1")) },
			func(tx model.Tx) (any, error) { return tx.OperatorToken("t-1") }, operatorToken("t-1")},
		{"join token", func(tx model.Tx) error { return tx.PutJoinToken(joinToken("j-1")) },
			func(tx model.Tx) (any, error) { return tx.JoinToken("j-1") }, joinToken("j-1")},
		{"enrollment", func(tx model.Tx) error { return tx.PutEnrollment(enrollment("fe-1")) },
			func(tx model.Tx) (any, error) { return tx.Enrollment("fe-1") }, enrollment("fe-1")},
		{"audit record", func(tx model.Tx) error { return tx.AppendAudit(auditRecord(1)) },
			func(tx model.Tx) (any, error) { return tx.Audit(1) }, auditRecord(1)},
		{"chunk", func(tx model.Tx) error { return tx.PutChunk(manifest.HashChunk([]byte("data")), []byte("data")) },
			func(tx model.Tx) (any, error) { return tx.Chunk(manifest.HashChunk([]byte("data"))) }, []byte("data")},
	}
}

// notFounds are the getters of a record that does not exist.
var notFounds = []struct {
	name string
	get  func(model.Tx) error
}{
	{"environment", func(tx model.Tx) error { _, err := tx.Environment("nope"); return err }},
	{"application", func(tx model.Tx) error { _, err := tx.Application("nope"); return err }},
	{"release", func(tx model.Tx) error { _, err := tx.Release("nope"); return err }},
	{"manifest", func(tx model.Tx) error { _, err := tx.Manifest("nope"); return err }},
	{"deployment", func(tx model.Tx) error { _, err := tx.Deployment("d-7"); return err }},
	{"deployment with a malformed id", func(tx model.Tx) error { _, err := tx.Deployment("x-1"); return err }},
	{"sql plan", func(tx model.Tx) error { _, err := tx.SQLPlan("d-7"); return err }},
	{"agent", func(tx model.Tx) error { _, err := tx.Agent("nope"); return err }},
	{"operator token", func(tx model.Tx) error { _, err := tx.OperatorToken("nope"); return err }},
	{"join token", func(tx model.Tx) error { _, err := tx.JoinToken("nope"); return err }},
	{"enrollment", func(tx model.Tx) error { _, err := tx.Enrollment("nope"); return err }},
	{"audit record", func(tx model.Tx) error { _, err := tx.Audit(1); return err }},
	{"chunk", func(tx model.Tx) error { _, err := tx.Chunk(manifest.HashChunk([]byte("nope"))); return err }},
}

func recordCases() []Case {
	cases := []Case{{"not found", func(t *testing.T, s model.Store) {
		view(t, s, func(tx model.Tx) error {
			for _, nf := range notFounds {
				if err := nf.get(tx); !errors.Is(err, errkind.NotFound) {
					t.Errorf("%s: got %v, want NotFound", nf.name, err)
				}
			}
			if last, err := tx.LastAudit(); last != nil || err != nil {
				t.Errorf("LastAudit of an empty log: %v, %v; want nil, nil", last, err)
			}
			if tx.HasChunk(manifest.HashChunk([]byte("nope"))) {
				t.Error("HasChunk of an unknown chunk is true")
			}
			return nil
		})
	}}}
	for _, rt := range roundTrips() {
		cases = append(cases, Case{"round trip " + rt.kind, func(t *testing.T, s model.Store) {
			var inTx any
			update(t, s, func(tx model.Tx) error {
				if err := rt.put(tx); err != nil {
					return err
				}
				var err error
				inTx, err = rt.get(tx) // reads see the transaction's own writes
				return err
			})
			var after any
			view(t, s, func(tx model.Tx) (err error) { after, err = rt.get(tx); return err })
			for when, got := range map[string]any{"in its transaction": inTx, "after the commit": after} {
				if !reflect.DeepEqual(got, rt.want) {
					t.Errorf("%s read back %s:\n got %+v\nwant %+v", rt.kind, when, clip(got), clip(rt.want))
				}
			}
		}})
	}
	return append(cases,
		Case{"put deployment with a malformed id", func(t *testing.T, s model.Store) {
			err := s.Update(func(tx model.Tx) error { return tx.PutDeployment(deployment("x-1", "production")) })
			if !errors.Is(err, errkind.InvalidArgument) {
				t.Errorf("got %v, want InvalidArgument", err)
			}
		}},
		Case{"deletes", func(t *testing.T, s model.Store) {
			update(t, s, func(tx model.Tx) error {
				return errors.Join(tx.PutAgent(agent("fe-1", "p")), tx.PutEnrollment(enrollment("fe-1")),
					tx.PutChunk(manifest.HashChunk([]byte("c")), []byte("c")))
			})
			update(t, s, func(tx model.Tx) error {
				return errors.Join(tx.DeleteAgent("fe-1"), tx.DeleteEnrollment("fe-1"), tx.DeleteAgent("never"),
					tx.DeleteChunk(manifest.HashChunk([]byte("c"))))
			})
			view(t, s, func(tx model.Tx) error {
				_, errA := tx.Agent("fe-1")
				_, errE := tx.Enrollment("fe-1")
				as, _ := tx.Agents()
				if !errors.Is(errA, errkind.NotFound) || !errors.Is(errE, errkind.NotFound) || len(as) != 0 ||
					tx.HasChunk(manifest.HashChunk([]byte("c"))) {
					t.Errorf("after the deletes: agent %v, enrollment %v, %d agents listed, chunk %v", errA, errE, len(as), tx.HasChunk(manifest.HashChunk([]byte("c"))))
				}
				return nil
			})
		}},
		Case{"reads see the transaction's own deletes", func(t *testing.T, s model.Store) {
			update(t, s, func(tx model.Tx) error {
				return errors.Join(tx.PutAgent(agent("a", "p")), tx.PutAgent(agent("b", "p")))
			})
			update(t, s, func(tx model.Tx) error {
				if err := tx.DeleteAgent("b"); err != nil {
					return err
				}
				as, err := tx.Agents()
				_, errB := tx.Agent("b")
				wantNames(t, "agents after deleting b", names(as, func(a *model.Agent) string { return a.Name }), []string{"a"})
				if !errors.Is(errB, errkind.NotFound) {
					t.Errorf("Agent(b) after its deletion: %v, want NotFound", errB)
				}
				if err := tx.PutAgent(agent("b", "p")); err != nil {
					return err
				}
				as, err2 := tx.Agents()
				wantNames(t, "agents after putting b back", names(as, func(a *model.Agent) string { return a.Name }), []string{"a", "b"})
				return errors.Join(err, err2)
			})
		}},
		Case{"a failed update keeps nothing", func(t *testing.T, s model.Store) {
			update(t, s, func(tx model.Tx) error { return tx.PutEnvironment(environment("production")) })
			boom := errors.New("boom")
			err := s.Update(func(tx model.Tx) error {
				changed := environment("production")
				changed.TwoStage = false
				id, err := tx.NextDeploymentID()
				if err != nil {
					return err
				}
				return errors.Join(tx.PutEnvironment(changed), tx.PutEnvironment(environment("staging")),
					tx.PutDeployment(deployment(id, "production")), tx.AppendAudit(auditRecord(1)), boom)
			})
			if !errors.Is(err, boom) {
				t.Fatalf("Update returned %v, want fn's error", err)
			}
			view(t, s, func(tx model.Tx) error {
				envs, _ := tx.Environments()
				ds, _ := tx.Deployments("")
				last, _ := tx.LastAudit()
				if len(envs) != 1 || !envs[0].TwoStage || len(ds) != 0 || last != nil {
					t.Errorf("after a failed update: %d environments (two_stage %v), %d deployments, last audit %v",
						len(envs), len(envs) > 0 && envs[0].TwoStage, len(ds), last)
				}
				return nil
			})
			update(t, s, func(tx model.Tx) error {
				if id, _ := tx.NextDeploymentID(); id != "d-1" {
					t.Errorf("the id after a failed update is %q, want d-1 (the failed update reserved none)", id)
				}
				return nil
			})
		}},
	)
}

// clip keeps a failure message readable when a value is a large manifest.
func clip(v any) any {
	if b, ok := v.([]byte); ok && len(b) > 64 {
		return string(b[:64]) + "…"
	}
	return v
}

// at returns t0 plus d: for records created at different times.
func at(d time.Duration) time.Time { return t0.Add(d) }
