package deployment

import (
	"strings"
	"testing"

	"github.com/cutover-dev/cutover/controlplane/fleet"
	"github.com/cutover-dev/cutover/controlplane/model"
)

func TestOutcomeCommand(t *testing.T) {
	left := func(kind fleet.CommandKind) *model.DeploymentAgent {
		return &model.DeploymentAgent{Name: "b", Unanswered: string(kind)}
	}
	ended := func(st model.DeploymentState) *model.Deployment {
		d := dep(st, false)
		d.Applications = []model.DeploymentApplication{{Name: "app", ReleaseID: "r2", PreviousReleaseID: "r1"}}
		return d
	}
	tests := []struct {
		name string
		d    *model.Deployment
		a    *model.DeploymentAgent
		want fleet.CommandKind // "": none
	}{
		{"ROLLED_BACK, commit unanswered", ended(model.RolledBack), left(fleet.Commit), fleet.Rollback},
		{"FAILED, commit unanswered", ended(model.Failed), left(fleet.Commit), fleet.Rollback},
		{"FAILED, swap-back unanswered", ended(model.Failed), left(fleet.Rollback), fleet.Rollback},
		{"DEPLOYED, commit unanswered", ended(model.Deployed), left(fleet.Commit), fleet.Commit},
		{"still ACTIVATING: at its end", ended(model.Activating), left(fleet.Commit), ""},
		{"arm unanswered: the disarm is enough", ended(model.Failed), left(fleet.Arm), ""},
		{"hooks unanswered", ended(model.RolledBack), left(fleet.Hooks), ""},
		{"answered", ended(model.RolledBack), left(""), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := outcomeCommand(tt.d, tt.a)
			switch {
			case tt.want == "" && c != nil:
				t.Fatalf("outcomeCommand = %+v, want none", c)
			case tt.want == "":
			case c == nil || c.Kind != tt.want || c.ID != commandID(tt.d, tt.want, "b") || c.DeploymentID != tt.d.ID:
				t.Fatalf("outcomeCommand = %+v, want %s", c, tt.want)
			case c.Kind == fleet.Commit && (len(c.Releases) != 1 || c.Releases[0].ReleaseID != "r2"):
				t.Fatalf("commit releases = %+v", c.Releases)
			}
		})
	}
}

func TestApplyOutcomeReport(t *testing.T) {
	mk := func() *model.Deployment {
		d := dep(model.RolledBack, true, ag("a", model.AgentRolledBack, "", true), model.DeploymentAgent{Name: "b", State: model.AgentFailed, Unanswered: "commit", Error: "no answer"})
		return d
	}
	back := commandID(mk(), fleet.Rollback, "b")
	tests := []struct {
		name      string
		r         fleet.Report
		msg       string // "": not an answer to the outcome command
		state     model.AgentState
		remaining string
	}{
		{"rolled back", fleet.Report{Agent: "b", CommandID: back, Outcome: fleet.Done}, "came back and was rolled back", model.AgentRolledBack, ""},
		{"rollback failed", fleet.Report{Agent: "b", CommandID: back, Outcome: fleet.CommandFailed, Error: "disk full"}, "FAILED: disk full; check it", model.AgentFailed, ""},
		{"progress", fleet.Report{Agent: "b", CommandID: back, Outcome: fleet.Progress}, "", model.AgentFailed, "commit"},
		{"the late commit answer", fleet.Report{Agent: "b", CommandID: commandID(mk(), fleet.Commit, "b"), Outcome: fleet.Done}, "", model.AgentFailed, "commit"},
		{"another agent", fleet.Report{Agent: "a", CommandID: commandID(mk(), fleet.Rollback, "a"), Outcome: fleet.Done}, "", model.AgentFailed, "commit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := mk()
			msg := applyOutcomeReport(d, tt.r)
			if (tt.msg == "") != (msg == "") || !strings.Contains(msg, tt.msg) {
				t.Fatalf("msg = %q, want ~%q", msg, tt.msg)
			}
			if b := d.Agents[1]; b.State != tt.state || b.Unanswered != tt.remaining {
				t.Fatalf("agent b = %+v", b)
			}
		})
	}
}
