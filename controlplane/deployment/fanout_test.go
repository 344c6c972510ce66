package deployment

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/controlplane/fleet"
	"github.com/cutover-dev/cutover/controlplane/model"
)

// timedStore wraps a real store and adds up the time its Updates take.
type timedStore struct {
	model.Store
	spent atomic.Int64
}

func (s *timedStore) Update(fn func(model.Tx) error) error {
	start := time.Now()
	defer func() { s.spent.Add(int64(time.Since(start))) }()
	return s.Store.Update(fn)
}

// arming is an ACTIVATING deployment of n agents in stage 2's arm step in
// which every agent but the last has answered.
func arming(n int) *model.Deployment {
	d := &model.Deployment{ID: "d-1", Environment: "prod", State: model.Activating, Step: model.StepArm, StepTime: t0, SQLDone: true,
		Applications: []model.DeploymentApplication{{Name: "hello", ReleaseID: "r1"}}}
	for i := range n {
		d.Agents = append(d.Agents, model.DeploymentAgent{Name: fmt.Sprintf("fe-%04d", i), State: model.AgentArmed, ReleaseBytes: 1 << 20})
	}
	d.Agents[n-1].State, d.Agents[n-1].Command = model.AgentStaging, "d-1.arm."+d.Agents[n-1].Name
	return d
}

// BenchmarkCommitFanOut1000Agents: stage 2's fan-out of commit to 1,000
// connected agents, from the last agent's arm DONE to a commit command in
// every agent's session queue: one durable transaction that moves the
// deployment to the commit step with every agent's command, then the
// pushes. store-ms/op is the part of it in the store's Update (reading,
// changing and writing the deployment, the fsync).
func BenchmarkCommitFanOut1000Agents(b *testing.B) {
	const n = 1000
	ts := &timedStore{}
	s, _ := progressServiceOn(b, arming(n), func(st model.Store) model.Store { ts.Store = st; return ts })
	var sessions []*fleet.Session
	for i := range n {
		ss, err := s.fleet.Connect(fleet.Hello{Name: fmt.Sprintf("fe-%04d", i), Environment: "prod"})
		if err != nil {
			b.Fatal(err)
		}
		sessions = append(sessions, ss)
	}
	last := fleet.Report{Agent: fmt.Sprintf("fe-%04d", n-1), DeploymentID: "d-1", CommandID: fmt.Sprintf("d-1.arm.fe-%04d", n-1), Outcome: fleet.Done}
	var spent time.Duration
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		if err := ts.Store.Update(func(tx model.Tx) error { return tx.PutDeployment(arming(n)) }); err != nil {
			b.Fatal(err)
		}
		before := ts.spent.Load()
		b.StartTimer()
		if err := s.handleReport(last); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		spent += time.Duration(ts.spent.Load() - before)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		for _, ss := range sessions { // one commit each, or the fan-out missed one
			if c, err := ss.Next(ctx); err != nil || c.Kind != fleet.Commit {
				b.Fatalf("agent %s: %v, %v; want its commit", ss.Name(), c.Kind, err)
			}
		}
		cancel()
		b.StartTimer()
	}
	b.ReportMetric(float64(spent.Microseconds())/1000/float64(b.N), "store-ms/op")
}
