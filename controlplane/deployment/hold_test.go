package deployment

import (
	"slices"
	"testing"

	"github.com/cutover-dev/cutover/controlplane/fleet"
	"github.com/cutover-dev/cutover/controlplane/store"
)

func TestFinishes(t *testing.T) {
	committing := func(agents ...store.DeploymentAgent) *store.Deployment {
		return &store.Deployment{ID: "d-1", State: store.Activating, Step: store.StepCommit, Agents: agents}
	}
	held := func(name string) store.DeploymentAgent {
		return store.DeploymentAgent{Name: name, State: store.AgentActivating, Command: "d-1.commit." + name, Ready: true}
	}
	waiting := func(name string) store.DeploymentAgent {
		return store.DeploymentAgent{Name: name, State: store.AgentActivating, Command: "d-1.commit." + name}
	}
	done := store.DeploymentAgent{Name: "done", State: store.AgentActive}
	failed := store.DeploymentAgent{Name: "bad", State: store.AgentRolledBack, SwappedBack: true}
	sent := held("c")
	sent.FinishSent = true
	ready := func(agent string) fleet.Report {
		return fleet.Report{Agent: agent, Outcome: fleet.Progress, Ready: true}
	}

	cases := []struct {
		name      string
		d         *store.Deployment
		r         fleet.Report
		want      []string // agents sent a finish
		wantAbort bool
	}{
		{"one still starting: nobody finishes", committing(held("a"), waiting("b")), ready("a"), nil, false},
		{"all ready: all finish", committing(held("a"), held("b")), ready("b"), []string{"a", "b"}, false},
		{"done ones do not wait", committing(held("a"), done), ready("a"), []string{"a"}, false},
		{"sent already: not again", committing(held("a"), sent), fleet.Report{Agent: "a", Outcome: fleet.Done}, []string{"a"}, false},
		{"a repeated ready gets it again", committing(held("a"), sent), ready("c"), []string{"a", "c"}, false},
		{"one failed: the ready ones abort", committing(held("a"), waiting("b"), failed), fleet.Report{Agent: "bad", Outcome: fleet.CommandFailed}, []string{"a"}, true},
		{"a rollback's commit is not held", &store.Deployment{ID: "d-1", State: store.Deployed, RollingBack: true, Step: store.StepCommit,
			Agents: []store.DeploymentAgent{held("a")}}, ready("a"), nil, false},
		{"not the commit step", &store.Deployment{ID: "d-1", State: store.Activating, Step: store.StepArm,
			Agents: []store.DeploymentAgent{held("a")}}, ready("a"), nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := finishes(tc.d, tc.r)
			var got []string
			for _, o := range out {
				got = append(got, o.agent)
				if o.cmd.Kind != fleet.Finish || o.cmd.ID != "d-1.commit."+o.agent || o.cmd.DeploymentID != "d-1" || o.cmd.Abort != tc.wantAbort {
					t.Errorf("command to %s: %+v, want a finish of its commit with abort %v", o.agent, o.cmd, tc.wantAbort)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("finishes sent to %v, want %v", got, tc.want)
			}
			for _, a := range tc.d.Agents {
				if slices.Contains(tc.want, a.Name) && !a.FinishSent {
					t.Errorf("agent %s: FinishSent not recorded", a.Name)
				}
			}
		})
	}
}

func TestCommitReportReadyAndOverlap(t *testing.T) {
	a := &store.DeploymentAgent{State: store.AgentActivating}
	applyCommitReport(a, fleet.Report{Outcome: fleet.Progress, Ready: true})
	if !a.Ready {
		t.Fatal("a ready progress report did not mark the agent ready")
	}
	applyCommitReport(a, fleet.Report{Outcome: fleet.Done, Overlap: 42})
	if a.State != store.AgentActive || a.Overlap != 42 {
		t.Fatalf("after DONE: state %s overlap %v", a.State, a.Overlap)
	}
}

func TestAwaitsFinish(t *testing.T) {
	for _, tt := range []struct {
		name string
		a    store.DeploymentAgent
		want bool
	}{
		{"ready, commit unanswered", store.DeploymentAgent{Ready: true, Command: "d-1.commit.fe1"}, true},
		{"ready, commit answered", store.DeploymentAgent{Ready: true}, false},
		{"not ready", store.DeploymentAgent{Command: "d-1.commit.fe1"}, false},
	} {
		if got := AwaitsFinish(tt.a); got != tt.want {
			t.Errorf("%s: AwaitsFinish = %v, want %v", tt.name, got, tt.want)
		}
	}
}
