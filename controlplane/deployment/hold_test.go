package deployment

import (
	"slices"
	"testing"

	"github.com/cutover-dev/cutover/controlplane/fleet"
	"github.com/cutover-dev/cutover/controlplane/model"
)

func TestFinishes(t *testing.T) {
	committing := func(agents ...model.DeploymentAgent) *model.Deployment {
		return &model.Deployment{ID: "d-1", State: model.Activating, Step: model.StepCommit, Agents: agents}
	}
	held := func(name string) model.DeploymentAgent {
		return model.DeploymentAgent{Name: name, State: model.AgentActivating, Command: "d-1.commit." + name, Ready: true}
	}
	waiting := func(name string) model.DeploymentAgent {
		return model.DeploymentAgent{Name: name, State: model.AgentActivating, Command: "d-1.commit." + name}
	}
	done := model.DeploymentAgent{Name: "done", State: model.AgentActive}
	failed := model.DeploymentAgent{Name: "bad", State: model.AgentRolledBack, SwappedBack: true}
	sent := held("c")
	sent.FinishSent = true
	ready := func(agent string) fleet.Report {
		return fleet.Report{Agent: agent, Outcome: fleet.Progress, Ready: true}
	}

	cases := []struct {
		name      string
		d         *model.Deployment
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
		{"a rollback's commit is not held", &model.Deployment{ID: "d-1", State: model.Deployed, RollingBack: true, Step: model.StepCommit,
			Agents: []model.DeploymentAgent{held("a")}}, ready("a"), nil, false},
		{"not the commit step", &model.Deployment{ID: "d-1", State: model.Activating, Step: model.StepArm,
			Agents: []model.DeploymentAgent{held("a")}}, ready("a"), nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := finishes(tc.d, tc.r)
			var got []string
			for _, o := range out {
				got = append(got, o.Agent)
				if o.Command.Kind != fleet.Finish || o.Command.ID != "d-1.commit."+o.Agent || o.Command.DeploymentID != "d-1" || o.Command.Abort != tc.wantAbort {
					t.Errorf("command to %s: %+v, want a finish of its commit with abort %v", o.Agent, o.Command, tc.wantAbort)
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
	a := &model.DeploymentAgent{State: model.AgentActivating}
	applyCommitReport(a, fleet.Report{Outcome: fleet.Progress, Ready: true})
	if !a.Ready {
		t.Fatal("a ready progress report did not mark the agent ready")
	}
	applyCommitReport(a, fleet.Report{Outcome: fleet.Done, Overlap: 42})
	if a.State != model.AgentActive || a.Overlap != 42 {
		t.Fatalf("after DONE: state %s overlap %v", a.State, a.Overlap)
	}
}

func TestAwaitsFinish(t *testing.T) {
	for _, tt := range []struct {
		name string
		a    model.DeploymentAgent
		want bool
	}{
		{"ready, commit unanswered", model.DeploymentAgent{Ready: true, Command: "d-1.commit.fe1"}, true},
		{"ready, commit answered", model.DeploymentAgent{Ready: true}, false},
		{"not ready", model.DeploymentAgent{Command: "d-1.commit.fe1"}, false},
	} {
		if got := AwaitsFinish(tt.a); got != tt.want {
			t.Errorf("%s: AwaitsFinish = %v, want %v", tt.name, got, tt.want)
		}
	}
}
