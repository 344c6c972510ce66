package etcdstore

import (
	"context"
	"fmt"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cutover-dev/cutover/controlplane/model"
)

// TestLargeDeployment: a deployment of 2000 front-ends is written whole in
// one transaction (groups of AgentsPerKey under --max-txn-ops), read back
// in order, and an agent's change rewrites one group only (and the header
// when the agents' tally moves).
func TestLargeDeployment(t *testing.T) {
	const agents = 2000
	s := open(t, newPrefix())
	d := &model.Deployment{ID: "d-1", Environment: "production", State: model.Preparing}
	for i := range agents {
		d.Agents = append(d.Agents, model.DeploymentAgent{Name: fmt.Sprintf("fe-%04d", i), State: model.AgentPending, ReleaseBytes: 1 << 20})
	}
	steps := []struct {
		name   string
		change func(d *model.Deployment)
		keys   int // keys the update writes (the store's txn key aside)
	}{
		{"create", func(*model.Deployment) {}, 1 + (agents+AgentsPerKey-1)/AgentsPerKey},
		{"one agent's bytes", func(d *model.Deployment) { d.Agents[1234].TransferredBytes = 5 }, 1},
		// Its group, and the header: the agents' tally moved.
		{"one agent staged", func(d *model.Deployment) { d.Agents[1234].State = model.AgentStaged }, 2},
		{"the state and one agent", func(d *model.Deployment) { d.State, d.Agents[0].TransferredBytes = model.Prepared, 7 }, 2},
		// The shortened last group, the deletion marker of the group
		// deleted, and the header (fewer agents in the tally).
		{"the last agents leave", func(d *model.Deployment) { d.Agents = d.Agents[:agents-AgentsPerKey-1] }, 3},
	}
	for _, st := range steps {
		st.change(d)
		if err := s.Update(func(tx model.Tx) error { return tx.PutDeployment(d) }); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		res, err := s.cfg.Client.Get(context.Background(), s.cfg.Prefix, clientv3.WithPrefix())
		if err != nil {
			t.Fatal(err)
		}
		written := -1 // the txn key
		for _, kv := range res.Kvs {
			if kv.ModRevision == res.Header.Revision {
				written++
			}
		}
		if written != st.keys {
			t.Errorf("%s: the update wrote %d keys, want %d", st.name, written, st.keys)
		}
		var got *model.Deployment
		if err := s.View(func(tx model.Tx) (err error) { got, err = tx.Deployment("d-1"); return err }); err != nil {
			t.Fatal(err)
		}
		if len(got.Agents) != len(d.Agents) || got.State != d.State || got.Agents[len(got.Agents)-1].Name != d.Agents[len(d.Agents)-1].Name ||
			len(got.Agents) > 1234 && got.Agents[1234].State != d.Agents[1234].State {
			t.Errorf("%s: read back %d agents, state %s", st.name, len(got.Agents), got.State)
		}
	}
}
