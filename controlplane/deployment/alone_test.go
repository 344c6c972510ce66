package deployment

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/controlplane/fleet"
	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/pkg/errkind"
	"github.com/cutover-dev/cutover/pkg/manifest"
)

// TestSettledFromTally lists reports that are decided from the header's tally
// alone, and those that need the whole deployment.
func TestSettledFromTally(t *testing.T) {
	stage := func(pending, failed int) *model.Deployment {
		return &model.Deployment{State: model.Preparing, Tally: &model.AgentTally{Pending: pending, Failed: failed}}
	}
	activating := func(step model.Stage2Step, tally model.AgentTally) *model.Deployment {
		return &model.Deployment{State: model.Activating, Step: step, SQLDone: true, Tally: &tally}
	}
	done := fleet.Report{Outcome: fleet.Done}
	ready := fleet.Report{Outcome: fleet.Progress, Ready: true}
	failedStates := map[model.AgentState]int{model.AgentFailed: 1}
	for _, tc := range []struct {
		name string
		d    *model.Deployment
		r    fleet.Report
		want bool
	}{
		{"stage 1, others still staging", stage(3, 0), done, true},
		{"stage 1, the last answer", stage(0, 0), done, false},
		{"stage 1, a failure", stage(3, 1), done, false},
		{"a header without a tally", &model.Deployment{State: model.Preparing}, done, false},
		{"PREPARED: a staging in the background", &model.Deployment{State: model.Prepared, Tally: &model.AgentTally{Pending: 3}}, done, false},
		{"arm, others unanswered", activating(model.StepArm, model.AgentTally{Pending: 2, Failed: 1}), done, true},
		{"arm, the last answer", activating(model.StepArm, model.AgentTally{}), done, false},
		{"before_activate hooks, others running", activating(model.StepBefore, model.AgentTally{Pending: 1}), done, true},
		{"the SQL step", activating(model.StepSQL, model.AgentTally{Pending: 1}), done, false},
		{"commit, others not ready", activating(model.StepCommit, model.AgentTally{Pending: 2, Waiting: 2}), done, true},
		{"commit, ready while others are not", activating(model.StepCommit, model.AgentTally{Pending: 2, Waiting: 1}), ready, true},
		{"commit, the last one ready: finishes go out", activating(model.StepCommit, model.AgentTally{Pending: 2, Unfinished: 2}), ready, false},
		{"commit, done after every finish went out", activating(model.StepCommit, model.AgentTally{Pending: 1}), done, true},
		{"commit, ready again after its finish (missed it)", activating(model.StepCommit, model.AgentTally{Pending: 1}), ready, false},
		{"commit, a failure while some are ready", activating(model.StepCommit, model.AgentTally{Pending: 2, Waiting: 1, Unfinished: 1, States: failedStates}), done, false},
		{"commit, the last answer", activating(model.StepCommit, model.AgentTally{}), done, false},
		{"swap-back after a failed commit", &model.Deployment{State: model.Activating, Step: model.StepCommit, RollingBack: true, SQLDone: true,
			Tally: &model.AgentTally{Pending: 1, Failed: 1}}, done, true},
		{"rollback by command", &model.Deployment{State: model.Deployed, RollingBack: true, Step: model.StepArm, Tally: &model.AgentTally{Pending: 1}}, done, false},
	} {
		if got := settled(tc.d, tc.r); got != tc.want {
			t.Errorf("%s: settled = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestSettledAgreesWithNext: on random deployments and reports, whenever
// settled says a report, applied to its agent alone with the header's
// tally moved, ends nothing, the rules applied to the whole deployment
// agree: next stays and finishes sends nothing.
func TestSettledAgreesWithNext(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 2))
	pick := func(n int) int { return rng.IntN(n) }
	states := []model.AgentState{model.AgentPending, model.AgentStaging, model.AgentStaged, model.AgentArmed,
		model.AgentActivating, model.AgentActive, model.AgentFailed, model.AgentRolledBack}
	steps := []model.Stage2Step{model.StepArm, model.StepBefore, model.StepCommit, model.StepAfter}
	outcomes := []fleet.Outcome{fleet.Progress, fleet.Done, fleet.CommandFailed}
	settledCount := 0
	for range 20000 {
		d := &model.Deployment{ID: "d-1", State: model.Preparing, SQLDone: true}
		if pick(2) == 0 {
			d.State, d.Step, d.RollingBack = model.Activating, steps[pick(len(steps))], pick(4) == 0
			d.Ending = model.Deployed
		}
		kind := phase(d)
		for i := range 1 + pick(5) {
			a := model.DeploymentAgent{Name: fmt.Sprintf("fe-%d", i), State: states[pick(len(states))],
				Ready: pick(3) == 0, FinishSent: pick(3) == 0}
			if pick(3) > 0 {
				a.Command = commandID(d, kind, a.Name)
			}
			if pick(4) == 0 {
				a.Error = "boom"
			}
			d.Agents = append(d.Agents, a)
		}
		i := pick(len(d.Agents))
		r := fleet.Report{Agent: d.Agents[i].Name, DeploymentID: d.ID, CommandID: commandID(d, kind, d.Agents[i].Name),
			Outcome: outcomes[pick(len(outcomes))], SwappedBack: pick(2) == 0}
		r.Ready = r.Outcome == fleet.Progress && pick(2) == 0

		h := *d // the header and agent i alone, as reportAlone reads them
		h.Tally = model.TallyAgents(d.Agents)
		h.Agents = []model.DeploymentAgent{d.Agents[i]}
		if !applyReport(&h, r) {
			continue
		}
		h.Tally.Move(&d.Agents[i], &h.Agents[0])
		if !settled(&h, r) {
			continue
		}
		settledCount++
		whole := *d
		whole.Agents = append([]model.DeploymentAgent(nil), d.Agents...)
		applyReport(&whole, r)
		if !reflect.DeepEqual(h.Tally, model.TallyAgents(whole.Agents)) {
			t.Fatalf("moved tally %+v, counted %+v", h.Tally, model.TallyAgents(whole.Agents))
		}
		if st := next(&whole); !reflect.DeepEqual(st, step{}) {
			t.Fatalf("settled, but next = %+v for %+v after %+v", st, whole, r)
		}
		if out := finishes(&whole, r); len(out) > 0 {
			t.Fatalf("settled, but finishes sends %+v for %+v after %+v", out, whole, r)
		}
	}
	if settledCount < 1000 {
		t.Fatalf("only %d of the random reports were settled: the test does not test much", settledCount)
	}
}

// fleetService is progressService's with deployment stagingFleet(n),
// release r1 recorded and its n agents connected, on the bbolt store as
// wrap wraps it.
func fleetService(t testing.TB, n int, wrap func(model.Store) model.Store) (*Service, func() *model.Deployment) {
	t.Helper()
	s, stored := progressServiceOn(t, stagingFleet(n), wrap)
	if err := s.store.Update(func(tx model.Tx) error {
		if err := tx.PutApplication(&model.Application{Name: "hello"}); err != nil {
			return err
		}
		return tx.PutRelease(&model.Release{ID: "r1", Application: "hello", CreateTime: t0}, (&manifest.Manifest{Application: "hello"}).Encode())
	}); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if _, err := s.fleet.Connect(fleet.Hello{Name: fmt.Sprintf("fe-%04d", i), Environment: "prod"}); err != nil {
			t.Fatal(err)
		}
	}
	return s, stored
}

// answerAll has each of the n agents answer the command kind of d-1 DONE,
// in order, batch reports at a time (handleReports), and checks the state
// d-1 is in after the last.
func answerAll(t testing.TB, s *Service, stored func() *model.Deployment, n int, kind fleet.CommandKind, want model.DeploymentState, batch int) {
	t.Helper()
	var rs []fleet.Report
	for i := range n {
		name := fmt.Sprintf("fe-%04d", i)
		rs = append(rs, fleet.Report{Agent: name, DeploymentID: "d-1", CommandID: "d-1." + string(kind) + "." + name,
			Outcome: fleet.Done, ReleaseBytes: 100, TransferredBytes: 100, Run: "r"})
		if len(rs) == batch || i == n-1 {
			if err := errors.Join(s.handleReports(rs)...); err != nil {
				t.Fatal(err)
			}
			rs = rs[:0]
		}
	}
	if d := stored(); d.State != want {
		t.Fatalf("after every %s DONE: %s (%s), want %s", kind, d.State, d.Error, want)
	}
}

// TestFinalReportsAlone: a deployment's stage 1 and stage 2 driven by
// their agents' final reports read the whole deployment once per step
// (the report that ends it) and once for the agents' positions; the
// others read and write the header and one agent. The header's tally
// stays that of the agents.
func TestFinalReportsAlone(t *testing.T) {
	const n = 20
	cs := &countingStore{calls: map[string]int{}}
	s, stored := fleetService(t, n, func(st model.Store) model.Store { cs.Store = st; return cs })
	checkTally := func(when string) {
		t.Helper()
		var h *model.Deployment
		if err := s.store.View(func(tx model.Tx) (err error) { h, err = tx.DeploymentHeader("d-1"); return err }); err != nil {
			t.Fatal(err)
		}
		if want := model.TallyAgents(stored().Agents); !reflect.DeepEqual(h.Tally, want) {
			t.Errorf("%s: the header's tally %+v, the agents' %+v", when, h.Tally, want)
		}
	}
	cs.take()
	answerAll(t, s, stored, n, fleet.Stage, model.Prepared, 1)
	if got, want := cs.take(), map[string]int{"Deployment": 2, "PutDeployment": 1, "DeploymentAgent": n - 1, "PutDeploymentAgent": n - 1}; !reflect.DeepEqual(got, want) {
		t.Errorf("stage 1: the store was called %v, want %v", got, want)
	}
	checkTally("PREPARED")
	if _, err := s.Continue(context.Background(), "alice", "d-1", ContinueOptions{}); err != nil {
		t.Fatal(err)
	}
	checkTally("arm sent")
	cs.take()
	answerAll(t, s, stored, n, fleet.Arm, model.Activating, 1)
	checkTally("commit sent")
	answerAll(t, s, stored, n, fleet.Commit, model.Deployed, 1)
	// Per step: the last answer reads its agent, finds that it ends the
	// step, and reads and writes the whole deployment; the positions were
	// read in stage 1.
	if got, want := cs.take(), map[string]int{"Deployment": 2, "PutDeployment": 2, "DeploymentAgent": 2 * n, "PutDeploymentAgent": 2 * (n - 1)}; !reflect.DeepEqual(got, want) {
		t.Errorf("stage 2: the store was called %v, want %v", got, want)
	}
	for _, a := range stored().Agents {
		if a.State != model.AgentActive || a.Command != "" {
			t.Errorf("agent %s: %s, command %q; want ACTIVE, none", a.Name, a.State, a.Command)
		}
	}
	checkTally("DEPLOYED")
}

// TestTallyKeptAcrossRestartAndOldHeaders: a header stored without a
// tally (by a controller before them) has its report decided on the
// whole deployment, whose write stores the tally; from then on reports
// are decided alone, also by a controller started again on the same
// store, and the stage ends as it would have.
func TestTallyKeptAcrossRestartAndOldHeaders(t *testing.T) {
	const n = 6
	cs := &countingStore{calls: map[string]int{}}
	s, stored := fleetService(t, n, func(st model.Store) model.Store { cs.Store = st; return cs })
	if err := cs.Store.Update(func(tx model.Tx) error {
		h, err := tx.DeploymentHeader("d-1")
		if err != nil {
			return err
		}
		h.Tally = nil
		return tx.PutDeploymentHeader(h)
	}); err != nil {
		t.Fatal(err)
	}
	report := func(s *Service, i int) map[string]int {
		t.Helper()
		cs.take()
		name := fmt.Sprintf("fe-%04d", i)
		if err := s.handleReport(fleet.Report{Agent: name, DeploymentID: "d-1", CommandID: "d-1.stage." + name, Outcome: fleet.Done}); err != nil {
			t.Fatal(err)
		}
		return cs.take()
	}
	if got := report(s, 0); got["PutDeployment"] != 1 {
		t.Errorf("first report on a header without a tally: %v; want a whole write", got)
	}
	if got := report(s, 1); got["PutDeployment"] != 0 || got["PutDeploymentAgent"] != 1 {
		t.Errorf("second report: %v; want the agent alone (its position read once)", got)
	}
	restarted, err := New(Config{Store: cs, Fleet: s.fleet, Clock: s.clock})
	if err != nil {
		t.Fatal(err)
	}
	if got := report(restarted, 2); got["PutDeployment"] != 0 {
		t.Errorf("after a restart: %v; want the agent alone (its position read once)", got)
	}
	for i := 3; i < n; i++ {
		report(restarted, i)
	}
	if d := stored(); d.State != model.Prepared {
		t.Fatalf("after every agent staged: %s (%s), want PREPARED", d.State, d.Error)
	}
}

// commitCounter wraps a real store and counts its write transactions.
type commitCounter struct {
	model.Store
	updates int
}

func (c *commitCounter) Update(fn func(model.Tx) error) error {
	c.updates++
	return c.Store.Update(fn)
}

// TestReportsStoredTogether: reports that arrive together and end no step
// are stored in one transaction, in order, each with the progress held
// before it; one for an unknown deployment fails alone; the report that
// ends the step is taken on the whole deployment after them.
func TestReportsStoredTogether(t *testing.T) {
	const n = 10
	cc := &commitCounter{}
	s, stored := fleetService(t, n, func(st model.Store) model.Store { cc.Store = st; return cc })
	done := func(i int) fleet.Report {
		name := fmt.Sprintf("fe-%04d", i)
		return fleet.Report{Agent: name, DeploymentID: "d-1", CommandID: "d-1.stage." + name, Outcome: fleet.Done,
			ReleaseBytes: 100, TransferredBytes: 100, Run: "r"}
	}
	progress := done(9)
	progress.Outcome, progress.TransferredBytes = fleet.Progress, 30
	cc.updates = 0
	if errs := s.handleReports([]fleet.Report{progress}); errs[0] != nil || cc.updates != 0 {
		t.Errorf("progress alone: %v, %d transactions; want it held, none", errs[0], cc.updates)
	}
	progress.TransferredBytes = 40
	batch := []fleet.Report{progress, done(0), done(1), {Agent: "fe-0002", DeploymentID: "d-9", CommandID: "d-9.stage.fe-0002", Outcome: fleet.Done}}
	for i := 2; i < n-1; i++ {
		batch = append(batch, done(i))
	}
	cc.updates = 0
	errs := s.handleReports(batch)
	if cc.updates != 1 {
		t.Errorf("%d reports stored in %d transactions, want 1", len(batch), cc.updates)
	}
	for i, err := range errs {
		if want := i == 3; errors.Is(err, errkind.NotFound) != want || (!want && err != nil) {
			t.Errorf("report %d (%s of %s): %v", i, batch[i].Agent, batch[i].DeploymentID, err)
		}
	}
	d := stored()
	for i, a := range d.Agents {
		if want := i < n-1; (a.State == model.AgentStaged) != want {
			t.Errorf("agent %s: %s", a.Name, a.State)
		}
	}
	if a := d.Agents[n-1]; a.TransferredBytes != 40 || s.progressPending() {
		t.Errorf("the progress held before the reports: %d bytes stored, held still %v; want 40, stored with them", a.TransferredBytes, s.progressPending())
	}
	cc.updates = 0
	if errs := s.handleReports([]fleet.Report{done(n - 1), done(0)}); errors.Join(errs...) != nil {
		t.Fatal(errs)
	}
	if d := stored(); d.State != model.Prepared {
		t.Fatalf("after the last DONE: %s (%s), want PREPARED", d.State, d.Error)
	}
}

// tallylessStore wraps a real store and hides the tally of the headers
// it reads, as a controller before tallies stored them: every final
// report then takes the whole deployment (update), as before reportAlone.
type tallylessStore struct{ model.Store }

func (s tallylessStore) Update(fn func(model.Tx) error) error {
	return s.Store.Update(func(tx model.Tx) error { return fn(tallylessTx{tx}) })
}

type tallylessTx struct{ model.Tx }

func (t tallylessTx) DeploymentHeader(id string) (*model.Deployment, error) {
	d, err := t.Tx.DeploymentHeader(id)
	if d != nil {
		d.Tally = nil
	}
	return d, err
}

// reportPaths are the ways a final report is stored, for the
// benchmarks: "whole" reads and writes the whole deployment (update, as
// every final report did before tallies), "alone" the header and the
// agent (reportAloneTx), "together" the same for up to maxReportBatch
// reports that arrived together, in one transaction (storeAlone).
var reportPaths = []struct {
	name  string
	wrap  func(model.Store) model.Store
	batch int
}{
	{"whole", func(s model.Store) model.Store { return tallylessStore{s} }, 1},
	{"alone", func(s model.Store) model.Store { return s }, 1},
	{"together", func(s model.Store) model.Store { return s }, maxReportBatch},
}

// BenchmarkFinalReport1000Agents: the controller's cost of one agent's
// stage DONE in a deployment of 1,000 agents that it does not end (one
// durable transaction each, bbolt with fsync), by either path.
// cpu-µs/op is the process's CPU time per report (user+system).
func BenchmarkFinalReport1000Agents(b *testing.B) {
	const n = 1000
	for _, p := range reportPaths[:2] { // one report at a time: "together" is "alone"
		b.Run(p.name, func(b *testing.B) {
			s, _ := progressServiceOn(b, stagingFleet(n), p.wrap)
			s.FlushProgress() // nothing held; the positions are read by the first report
			cpu0 := cpuTime(b)
			b.ResetTimer()
			for i := range b.N {
				if i%(n-1) == 0 && i > 0 { // every agent but the last staged: start again
					b.StopTimer()
					if err := s.store.Update(func(tx model.Tx) error { return tx.PutDeployment(stagingFleet(n)) }); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
				name := fmt.Sprintf("fe-%04d", i%(n-1))
				if err := s.handleReport(fleet.Report{Agent: name, DeploymentID: "d-1", CommandID: "d-1.stage." + name,
					Outcome: fleet.Done, ReleaseBytes: 1 << 30, TransferredBytes: 1 << 30, Run: "r1"}); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
		})
	}
}

// BenchmarkStages1000Agents: a deployment of 1,000 connected agents
// driven in-process through stage 1 (1,000 stage DONE), continue, and
// stage 2 (1,000 arm DONE, 1,000 commit DONE) to DEPLOYED, by each
// path; no network, no agents, bbolt with fsync. Run it with -benchtime
// 1x. stage1-s and stage2-s are the wall times of each stage.
func BenchmarkStages1000Agents(b *testing.B) {
	const n = 1000
	for _, p := range reportPaths {
		b.Run(p.name, func(b *testing.B) {
			var stage1, stage2 time.Duration
			cpu := time.Duration(0)
			for range b.N {
				b.StopTimer()
				s, stored := fleetService(b, n, p.wrap)
				cpu0 := cpuTime(b)
				b.StartTimer()
				start := time.Now()
				answerAll(b, s, stored, n, fleet.Stage, model.Prepared, p.batch)
				stage1 += time.Since(start)
				start = time.Now()
				if _, err := s.Continue(context.Background(), "alice", "d-1", ContinueOptions{}); err != nil {
					b.Fatal(err)
				}
				answerAll(b, s, stored, n, fleet.Arm, model.Activating, p.batch)
				answerAll(b, s, stored, n, fleet.Commit, model.Deployed, p.batch)
				stage2 += time.Since(start)
				cpu += cpuTime(b) - cpu0
			}
			b.ReportMetric(stage1.Seconds()/float64(b.N), "stage1-s")
			b.ReportMetric(stage2.Seconds()/float64(b.N), "stage2-s")
			b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
		})
	}
}
