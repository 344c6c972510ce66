package deployment

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/cutover-dev/cutover/controlplane/fleet"
	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/controlplane/store"
)

// progressService returns a service over a real bbolt file holding d (in
// environment prod), and a function that reads d back from the store.
func progressService(t testing.TB, d *model.Deployment) (*Service, func() *model.Deployment) {
	return progressServiceOn(t, d, func(s model.Store) model.Store { return s })
}

// progressServiceOn is progressService on the bbolt store as wrap wraps it.
func progressServiceOn(t testing.TB, d *model.Deployment, wrap func(model.Store) model.Store) (*Service, func() *model.Deployment) {
	t.Helper()
	bolt, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bolt.Close() })
	st := wrap(bolt)
	f, err := fleet.New(fleet.Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Store: st, Fleet: f, Clock: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Update(func(tx model.Tx) error {
		if err := tx.PutEnvironment(&model.Environment{Name: "prod"}); err != nil {
			return err
		}
		return tx.PutDeployment(d)
	}); err != nil {
		t.Fatal(err)
	}
	stored := func() *model.Deployment {
		t.Helper()
		var got *model.Deployment
		if err := st.View(func(tx model.Tx) error {
			var err error
			got, err = tx.Deployment(d.ID)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return got
	}
	return s, stored
}

// staging is a PREPARING deployment whose agents a and b stage.
func staging() *model.Deployment {
	return &model.Deployment{ID: "d-1", Environment: "prod", State: model.Preparing,
		Applications: []model.DeploymentApplication{{Name: "hello", ReleaseID: "r1"}},
		Agents: []model.DeploymentAgent{{Name: "a", State: model.AgentPending, Command: "d-1.stage.a"},
			{Name: "b", State: model.AgentPending, Command: "d-1.stage.b"}}}
}

func progress(agent, run string, n int64) fleet.Report {
	return fleet.Report{Agent: agent, DeploymentID: "d-1", CommandID: "d-1.stage." + agent, Outcome: fleet.Progress,
		ReleaseBytes: 100, TransferredBytes: n, Run: run}
}

func handle(t *testing.T, s *Service, r fleet.Report) {
	t.Helper()
	if err := s.handleReport(r); err != nil {
		t.Fatal(err)
	}
}

// TestProgressCoalesced: many PROGRESS reports of a stage are held, then
// stored in one write with the bytes they add up to; a flush with nothing
// held writes nothing.
func TestProgressCoalesced(t *testing.T) {
	s, stored := progressService(t, staging())
	for i := range int64(50) {
		handle(t, s, progress("a", "r1", 2*i))
		handle(t, s, progress("b", "r1", i))
	}
	handle(t, s, progress("a", "r2", 5))  // a restarted: a new run counting from 0
	handle(t, s, progress("a", "r1", 10)) // late, and less than r1 counted: changes nothing
	if got := stored().Agents[0]; got.TransferredBytes != 0 || got.State != model.AgentPending {
		t.Fatalf("before the flush: agent a stored with %d bytes, %s; want nothing stored yet", got.TransferredBytes, got.State)
	}
	if n := count(t, s.metrics.progressHeld); n != 102 {
		t.Fatalf("%v reports held, want 102", n)
	}
	s.FlushProgress()
	d := stored()
	if a, b := d.Agents[0], d.Agents[1]; a.TransferredBytes != 98+5 || b.TransferredBytes != 49 || a.State != model.AgentStaging || len(a.Runs) != 2 {
		t.Fatalf("after the flush: a %d bytes (%s, runs %v), b %d; want 103 (staging, 2 runs) and 49", a.TransferredBytes, a.State, a.Runs, b.TransferredBytes)
	}
	s.FlushProgress()
	if n := count(t, s.metrics.progressFlushes); n != 1 {
		t.Fatalf("%v writes, want 1", n)
	}
}

// TestProgressStoredBeforeFinalReport: a final report stores the progress
// held for every agent of its deployment with it, so nothing shown goes
// backwards, and nothing is left to flush.
func TestProgressStoredBeforeFinalReport(t *testing.T) {
	s, stored := progressService(t, staging())
	handle(t, s, progress("a", "r1", 40))
	handle(t, s, progress("b", "r1", 30))
	handle(t, s, fleet.Report{Agent: "a", DeploymentID: "d-1", CommandID: "d-1.stage.a", Outcome: fleet.Done,
		ReleaseBytes: 100, TransferredBytes: 100, Run: "r1"})
	d := stored()
	if a, b := d.Agents[0], d.Agents[1]; a.State != model.AgentStaged || a.TransferredBytes != 100 || b.State != model.AgentStaging || b.TransferredBytes != 30 {
		t.Fatalf("after a's DONE: a %s %d bytes, b %s %d bytes; want staged 100, staging 30", a.State, a.TransferredBytes, b.State, b.TransferredBytes)
	}
	if s.progressPending() {
		t.Fatal("progress still held after it was stored with the DONE")
	}
	s.FlushProgress()
	if n := count(t, s.metrics.progressFlushes); n != 0 {
		t.Fatalf("%v writes of progress alone, want 0", n)
	}
}

// TestProgressKeptWhenChangeStoresNothing: a report that changes nothing
// (stale) does not drop the progress held.
func TestProgressKeptWhenChangeStoresNothing(t *testing.T) {
	s, stored := progressService(t, staging())
	handle(t, s, progress("a", "r1", 40))
	handle(t, s, fleet.Report{Agent: "b", DeploymentID: "d-1", CommandID: "d-1.stage.old", Outcome: fleet.Done})
	if !s.progressPending() {
		t.Fatal("the held progress was dropped by a stale report")
	}
	s.FlushProgress()
	if got := stored().Agents[0].TransferredBytes; got != 40 {
		t.Fatalf("a: %d bytes stored, want 40", got)
	}
}

// TestReadyProgressNotCoalesced: a commit's PROGRESS with Ready drives the
// held commit (hold.go): it is stored and acted on at once.
func TestReadyProgressNotCoalesced(t *testing.T) {
	d := &model.Deployment{ID: "d-1", Environment: "prod", State: model.Activating, Step: model.StepCommit, StepTime: t0,
		Agents: []model.DeploymentAgent{{Name: "a", State: model.AgentActivating, Command: "d-1.commit.a"}}}
	s, stored := progressService(t, d)
	handle(t, s, fleet.Report{Agent: "a", DeploymentID: "d-1", CommandID: "d-1.commit.a", Outcome: fleet.Progress, Ready: true})
	if a := stored().Agents[0]; !a.Ready || !a.FinishSent {
		t.Fatalf("after a ready report: ready %v, finish sent %v; want both stored at once", a.Ready, a.FinishSent)
	}
	if s.progressPending() {
		t.Fatal("a ready report was held")
	}
}

// TestCoalescable lists which reports are held.
func TestCoalescable(t *testing.T) {
	r := func(cmd string, o fleet.Outcome, ready bool) fleet.Report {
		return fleet.Report{Agent: "a", DeploymentID: "d-1", CommandID: cmd, Outcome: o, Ready: ready}
	}
	cases := []struct {
		r    fleet.Report
		want bool
	}{
		{r("d-1.stage.a", fleet.Progress, false), true},
		{r("d-1.arm.a", fleet.Progress, false), true},
		{r("d-1.stage.a", fleet.Done, false), false},
		{r("d-1.arm.a", fleet.CommandFailed, false), false},
		{r("d-1.commit.a", fleet.Progress, true), false},
		{r("d-1.commit.a", fleet.Progress, false), false},
		{r("d-1.hooks.a", fleet.Progress, false), false},
		{r("d-2.stage.a", fleet.Progress, false), false}, // another deployment's id: not read as a stage
		{r("x", fleet.Progress, false), false},
	}
	// The arm of a rollback by command: its id from rollbackCommandID.
	rollbackArm := r(rollbackCommandID(&model.Deployment{ID: "d-1", RollbackAttempt: 3}, fleet.Arm, "a"), fleet.Progress, false)
	rollbackArm.RollbackAttempt = 3
	cases = append(cases, struct {
		r    fleet.Report
		want bool
	}{rollbackArm, true})
	for _, tc := range cases {
		if got := coalescable(tc.r); got != tc.want {
			t.Errorf("coalescable(%s %v ready=%v) = %v, want %v", tc.r.CommandID, tc.r.Outcome, tc.r.Ready, got, tc.want)
		}
	}
}

// TestProgressFlushPublishes: watchers see held progress when it is stored,
// not before.
func TestProgressFlushPublishes(t *testing.T) {
	s, _ := progressService(t, staging())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := s.Watch(ctx, "d-1")
	if err != nil {
		t.Fatal(err)
	}
	<-ch // as it is now
	handle(t, s, progress("a", "r1", 40))
	select {
	case c := <-ch:
		t.Fatalf("published before the flush: %+v", c.Deployment.Agents[0])
	default:
	}
	s.FlushProgress()
	select {
	case c := <-ch:
		if a := c.Deployment.Agents; !c.Partial || len(a) != 1 || a[0].Name != "a" || a[0].TransferredBytes != 40 || c.Deployment.State != model.Preparing {
			t.Fatalf("published %+v (partial %v), want the header and agent a alone, with 40 bytes", c.Deployment, c.Partial)
		}
	default:
		t.Fatal("the flush published nothing")
	}
}

// count reads a counter.
func count(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
