package deployment

import (
	"fmt"
	"testing"

	"github.com/cutover-dev/cutover/controlplane/fleet"
	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/controlplane/store"
)

// TestTransferredBytesAddsUpRuns applies sequences of one agent's reports
// and checks its transferred_bytes after each: the runs of a command (each
// counting from 0) add up; a resend the agent joined to the run going on
// (same run id) is not counted twice; an agent without run ids is taken at
// its word, as before run ids.
func TestTransferredBytesAddsUpRuns(t *testing.T) {
	type rep struct {
		run     string
		bytes   int64
		outcome fleet.Outcome // 0: PROGRESS
	}
	stage := dep(model.Preparing, false, model.DeploymentAgent{Name: "a", State: model.AgentPending, Command: "c"})
	tests := []struct {
		name string
		d    *model.Deployment // copied for the test
		reps []rep
		want []int64 // transferred_bytes after each report
	}{
		{"one run growing", stage, []rep{{"r1", 4, 0}, {"r1", 9, 0}, {"r1", 10, fleet.Done}}, []int64{4, 9, 10}},
		{"agent restarted: the new run counts from 0", stage,
			[]rep{{"r1", 4, 0}, {"r1", 6, 0}, {"r2", 0, 0}, {"r2", 3, 0}, {"r2", 5, fleet.Done}}, []int64{4, 6, 6, 9, 11}},
		{"resend joined to the running command: same run, not counted twice", stage,
			[]rep{{"r1", 4, 0}, {"r1", 4, 0}, {"r1", 7, 0}}, []int64{4, 4, 7}},
		{"resend after the release was staged: DONE at once with 0 bytes", stage,
			[]rep{{"r1", 10, 0}, {"r2", 0, fleet.Done}}, []int64{10, 10}},
		{"a late report of an earlier run changes nothing", stage,
			[]rep{{"r1", 4, 0}, {"r2", 2, 0}, {"r1", 3, 0}, {"r2", 5, 0}}, []int64{4, 6, 6, 9}},
		{"an agent without run ids: the last count, as before", stage,
			[]rep{{"", 4, 0}, {"", 1, 0}, {"", 3, fleet.Done}}, []int64{4, 1, 3}},
		{"arm adds its runs to stage 1's bytes",
			armAg(model.DeploymentAgent{Name: "a", State: model.AgentStaged, Command: "c", ReleaseBytes: 20, TransferredBytes: 10}),
			[]rep{{"a1", 3, 0}, {"a1", 4, 0}, {"a2", 2, 0}, {"a2", 6, fleet.Done}}, []int64{13, 14, 16, 20}},
		{"arm from an agent without run ids, as before",
			armAg(model.DeploymentAgent{Name: "a", State: model.AgentStaged, Command: "c", ReleaseBytes: 20, TransferredBytes: 10}),
			[]rep{{"", 3, 0}, {"", 5, fleet.Done}}, []int64{13, 15}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := *tt.d
			d.Agents = append([]model.DeploymentAgent(nil), tt.d.Agents...)
			for i, r := range tt.reps {
				outcome := r.outcome
				if outcome == 0 {
					outcome = fleet.Progress
				}
				if !applyReport(&d, fleet.Report{Agent: "a", CommandID: "c", Outcome: outcome, ReleaseBytes: 20, TransferredBytes: r.bytes, Run: r.run}) {
					t.Fatalf("report %d not applied", i)
				}
				if got := d.Agents[0].TransferredBytes; got != tt.want[i] {
					t.Fatalf("after report %d (run %q, %d bytes): transferred_bytes = %d, want %d", i, r.run, r.bytes, got, tt.want[i])
				}
				if outcome.Final() { // the controller would resend it
					d.Agents[0].Command = "c"
				}
			}
		})
	}
}

// TestTransferredBytesRunsBounded: a command run again and again keeps only
// the latest maxRuns runs, and the forgotten ones' bytes stay counted.
func TestTransferredBytesRunsBounded(t *testing.T) {
	d := dep(model.Preparing, false, model.DeploymentAgent{Name: "a", State: model.AgentPending, Command: "c"})
	for i := range maxRuns + 8 {
		applyReport(d, fleet.Report{Agent: "a", CommandID: "c", Outcome: fleet.Progress, TransferredBytes: 2, Run: fmt.Sprint("r", i)})
	}
	a := d.Agents[0]
	if a.TransferredBytes != 2*(maxRuns+8) || len(a.Runs) != maxRuns || a.Runs[maxRuns-1].Run != fmt.Sprint("r", maxRuns+7) {
		t.Fatalf("transferred_bytes = %d with %d runs kept (last %q), want %d with %d", a.TransferredBytes, len(a.Runs), a.Runs[len(a.Runs)-1].Run, 2*(maxRuns+8), maxRuns)
	}
}

// TestTransferredBytesSurviveControllerRestart drives handleReport on a real
// bbolt file: what a run reported before the controller restarted (store
// closed and opened again, a new Service) is still counted when the agent
// runs the resent command again from 0, and a report of the run that was
// going on (the agent joined the resend to it) is not counted twice.
// Progress held and not yet stored when the controller stopped is lost,
// and counted again from the run's next report.
func TestTransferredBytesSurviveControllerRestart(t *testing.T) {
	dir := t.TempDir()
	open := func() (*store.Store, *Service) {
		st, err := store.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		f, err := fleet.New(fleet.Config{Store: st})
		if err != nil {
			t.Fatal(err)
		}
		s, err := New(Config{Store: st, Fleet: f})
		if err != nil {
			t.Fatal(err)
		}
		return st, s
	}
	st, s := open()
	err := st.Update(func(tx model.Tx) error {
		if err := tx.PutEnvironment(&model.Environment{Name: "prod"}); err != nil {
			return err
		}
		return tx.PutDeployment(&model.Deployment{ID: "d-1", Environment: "prod", State: model.Preparing,
			Applications: []model.DeploymentApplication{{Name: "hello", ReleaseID: "r1"}},
			Agents: []model.DeploymentAgent{{Name: "a", State: model.AgentPending, Command: "d-1.stage.a"},
				{Name: "waits", State: model.AgentPending, Command: "d-1.stage.waits"}}}) // keeps it PREPARING
	})
	if err != nil {
		t.Fatal(err)
	}
	// held reports the progress without storing it; report stores it too
	// (the flush that Run's timer makes).
	held := func(s *Service, run string, n int64) {
		t.Helper()
		if err := s.handleReport(fleet.Report{Agent: "a", DeploymentID: "d-1", CommandID: "d-1.stage.a", Outcome: fleet.Progress,
			ReleaseBytes: 100, TransferredBytes: n, Run: run}); err != nil {
			t.Fatal(err)
		}
	}
	report := func(s *Service, run string, n int64, want int64) {
		t.Helper()
		held(s, run, n)
		s.FlushProgress()
		var got int64
		if err := st.View(func(tx model.Tx) error {
			d, err := tx.Deployment("d-1")
			if err == nil {
				got = d.Agents[0].TransferredBytes
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("after run %q reported %d: transferred_bytes = %d, want %d", run, n, got, want)
		}
	}
	report(s, "r1", 30, 30)
	report(s, "r1", 40, 40)
	held(s, "r1", 42) // lost with the controller: not stored yet
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st, s = open()
	defer st.Close()
	report(s, "r1", 45, 45) // the run went on while the controller was down; its count says the 42 again
	report(s, "r2", 0, 45)  // then the agent ran the resent command again
	report(s, "r2", 50, 95)
}
