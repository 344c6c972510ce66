package deployment

import (
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/controlplane/fleet"
	"github.com/cutover-dev/cutover/controlplane/model"
)

// countingStore wraps a real store and counts the deployment accessors
// its write transactions call.
type countingStore struct {
	model.Store
	mu    sync.Mutex
	calls map[string]int
}

func (c *countingStore) Update(fn func(model.Tx) error) error {
	return c.Store.Update(func(tx model.Tx) error { return fn(countingTx{tx, c}) })
}

func (c *countingStore) count(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls[name]++
}

// take returns the counts so far and starts again from zero.
func (c *countingStore) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	calls := c.calls
	c.calls = map[string]int{}
	return calls
}

type countingTx struct {
	model.Tx
	c *countingStore
}

func (t countingTx) Deployment(id string) (*model.Deployment, error) {
	t.c.count("Deployment")
	return t.Tx.Deployment(id)
}

func (t countingTx) PutDeployment(d *model.Deployment) error {
	t.c.count("PutDeployment")
	return t.Tx.PutDeployment(d)
}

func (t countingTx) DeploymentAgent(id string, i int) (*model.DeploymentAgent, error) {
	t.c.count("DeploymentAgent")
	return t.Tx.DeploymentAgent(id, i)
}

func (t countingTx) PutDeploymentAgent(id string, i int, a *model.DeploymentAgent) error {
	t.c.count("PutDeploymentAgent")
	return t.Tx.PutDeploymentAgent(id, i, a)
}

// stagingFleet is a PREPARING deployment whose n agents, fe-0000 on, stage.
func stagingFleet(n int) *model.Deployment {
	d := &model.Deployment{ID: "d-1", Environment: "prod", State: model.Preparing,
		Applications: []model.DeploymentApplication{{Name: "hello", ReleaseID: "r1"}}}
	for i := range n {
		name := fmt.Sprintf("fe-%04d", i)
		d.Agents = append(d.Agents, model.DeploymentAgent{Name: name, State: model.AgentPending, Command: "d-1.stage." + name})
	}
	return d
}

// TestFlushReadsOnlyTheAgentsThatReported: once the agents' positions are
// known (one read of the whole deployment), a flush reads and writes the
// records of the agents that reported, and never the whole deployment; a
// report of a name that is not an agent of the deployment changes nothing;
// an agent added since is found by reading the whole deployment again.
func TestFlushReadsOnlyTheAgentsThatReported(t *testing.T) {
	cs := &countingStore{calls: map[string]int{}}
	s, stored := progressServiceOn(t, stagingFleet(100), func(st model.Store) model.Store { cs.Store = st; return cs })
	steps := []struct {
		name    string
		before  func()
		reports []string // agents that report 10 bytes more
		want    map[string]int
	}{
		{"first flush: the positions are read", nil, []string{"fe-0007"},
			map[string]int{"Deployment": 1, "PutDeploymentAgent": 1}},
		{"three agents", nil, []string{"fe-0007", "fe-0050", "fe-0099"},
			map[string]int{"DeploymentAgent": 3, "PutDeploymentAgent": 3}},
		{"not an agent of the deployment", nil, []string{"stranger", "fe-0001"},
			map[string]int{"Deployment": 1, "DeploymentAgent": 1, "PutDeploymentAgent": 1}},
		{"an agent added since", func() {
			if err := cs.Store.Update(func(tx model.Tx) error {
				return tx.PutDeploymentAgent("d-1", 100, &model.DeploymentAgent{Name: "late", State: model.AgentPending, Command: "d-1.stage.late"})
			}); err != nil {
				t.Fatal(err)
			}
		}, []string{"late"}, map[string]int{"Deployment": 1, "PutDeploymentAgent": 1}},
	}
	sent := map[string]int64{}
	for _, st := range steps {
		if st.before != nil {
			st.before()
		}
		cs.take()
		for _, name := range st.reports {
			sent[name] += 10
			handle(t, s, fleet.Report{Agent: name, DeploymentID: "d-1", CommandID: "d-1.stage." + name, Outcome: fleet.Progress,
				ReleaseBytes: 100, TransferredBytes: sent[name]})
		}
		s.FlushProgress()
		if got := cs.take(); fmt.Sprint(got) != fmt.Sprint(st.want) {
			t.Errorf("%s: the flush called %v, want %v", st.name, got, st.want)
		}
	}
	for _, a := range stored().Agents {
		if a.TransferredBytes != sent[a.Name] || (sent[a.Name] > 0) != (a.State == model.AgentStaging) {
			t.Errorf("agent %s stored with %d bytes, %s; want %d", a.Name, a.TransferredBytes, a.State, sent[a.Name])
		}
	}
}

// BenchmarkProgressReport1000Agents: the controller's cost of storing one
// agent's PROGRESS report in a deployment of 1,000 agents (one report
// held, then flushed: one durable transaction each), by the path that
// reads and writes the whole deployment ("whole", as FlushProgress did
// before per-agent access) and by the one that reads the header and that
// agent's record ("agent"). cpu-µs/op is the process's CPU time per
// report (user+system: the fsync's wait is not in it, its system time is).
func BenchmarkProgressReport1000Agents(b *testing.B) {
	for _, v := range []struct {
		name  string
		flush func(s *Service)
	}{
		{"whole", func(s *Service) {
			s.mu.Lock()
			defer s.mu.Unlock()
			if _, err := s.update("d-1", nil); err != nil {
				b.Fatal(err)
			}
		}},
		{"agent", func(s *Service) { s.FlushProgress() }},
	} {
		b.Run(v.name, func(b *testing.B) {
			s, _ := progressService(b, stagingFleet(1000))
			s.FlushProgress() // the agents' positions: read once per deployment
			cpu0 := cpuTime(b)
			b.ResetTimer()
			for i := range b.N {
				name := fmt.Sprintf("fe-%04d", i%1000)
				s.mu.Lock()
				s.holdProgress(fleet.Report{Agent: name, DeploymentID: "d-1", CommandID: "d-1.stage." + name, Outcome: fleet.Progress,
					ReleaseBytes: 1 << 30, TransferredBytes: int64(i+1) << 20, Run: "r1"})
				s.mu.Unlock()
				v.flush(s)
			}
			b.StopTimer()
			b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
		})
	}
}

// cpuTime is the CPU time the process has used, user and system.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
