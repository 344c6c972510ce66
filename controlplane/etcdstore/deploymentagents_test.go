package etcdstore

import (
	"errors"
	"fmt"
	"testing"

	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/pkg/errkind"
)

// bump is an update that adds n bytes to agent i of d-1, read and written
// alone; between runs after the read.
func bump(i int, n int64, between func()) func(model.Tx) error {
	return func(tx model.Tx) error {
		a, err := tx.DeploymentAgent("d-1", i)
		if err != nil {
			return err
		}
		between()
		a.TransferredBytes += n
		return tx.PutDeploymentAgent("d-1", i, a)
	}
}

// TestAgentConflicts: two controllers change agents of one deployment at
// once. Agents of one group conflict (the second commit is Aborted, and
// succeeds when run again), agents of different groups do not, and a
// change of the header aborts a transaction that read it with an agent.
func TestAgentConflicts(t *testing.T) {
	cases := []struct {
		name   string
		a, b   int // the agents a and b change
		header bool
		want   error
	}{
		{"the same agent", 3, 3, false, errkind.Aborted},
		{"another agent of the same group", 3, 4, false, errkind.Aborted},
		{"an agent of another group", 3, AgentsPerKey + 3, false, nil},
		{"the header", 3, -1, true, errkind.Aborted},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			prefix := newPrefix()
			a, b := open(t, prefix), open(t, prefix)
			d := &model.Deployment{ID: "d-1", Environment: "production", State: model.Preparing}
			for i := range 2 * AgentsPerKey {
				d.Agents = append(d.Agents, model.DeploymentAgent{Name: fmt.Sprintf("fe-%02d", i)})
			}
			if err := a.Update(func(tx model.Tx) error { return tx.PutDeployment(d) }); err != nil {
				t.Fatal(err)
			}
			change := bump(c.b, 10, func() {})
			if c.header {
				change = func(tx model.Tx) error {
					h, err := tx.DeploymentHeader("d-1")
					if err != nil {
						return err
					}
					h.State = model.Aborted
					return tx.PutDeploymentHeader(h)
				}
			}
			err := a.Update(bump(c.a, 1, func() {
				if err := b.Update(change); err != nil {
					t.Fatalf("b's change: %v", err)
				}
			}))
			if !errors.Is(err, c.want) || c.want == nil && err != nil {
				t.Fatalf("a's update: %v, want %v", err, c.want)
			}
			if err != nil { // run again, as the deployment service's next flush does
				if err := a.Update(bump(c.a, 1, func() {})); err != nil {
					t.Fatalf("a's update run again: %v", err)
				}
			}
			var got *model.Deployment
			if err := a.View(func(tx model.Tx) (err error) { got, err = tx.Deployment("d-1"); return err }); err != nil {
				t.Fatal(err)
			}
			want := map[int]int64{c.a: 1}
			if !c.header {
				want[c.b] += 10
			}
			for i, ag := range got.Agents {
				if ag.TransferredBytes != want[i] {
					t.Errorf("agent %d: %d bytes, want %d", i, ag.TransferredBytes, want[i])
				}
			}
		})
	}
}
