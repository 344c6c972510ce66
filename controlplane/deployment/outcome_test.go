package deployment

import (
	"strings"
	"testing"

	"github.com/cutover-dev/cutover/controlplane/fleet"
	"github.com/cutover-dev/cutover/controlplane/store"
)

func TestOutcomeCommand(t *testing.T) {
	left := func(kind fleet.CommandKind) *store.DeploymentAgent {
		return &store.DeploymentAgent{Name: "b", Unanswered: string(kind)}
	}
	ended := func(st store.DeploymentState) *store.Deployment {
		d := dep(st, false)
		d.Applications = []store.DeploymentApplication{{Name: "app", ReleaseID: "r2", PreviousReleaseID: "r1"}}
		return d
	}
	tests := []struct {
		name string
		d    *store.Deployment
		a    *store.DeploymentAgent
		want fleet.CommandKind // "": none
	}{
		{"ROLLED_BACK, commit unanswered", ended(store.RolledBack), left(fleet.Commit), fleet.Rollback},
		{"FAILED, commit unanswered", ended(store.Failed), left(fleet.Commit), fleet.Rollback},
		{"FAILED, swap-back unanswered", ended(store.Failed), left(fleet.Rollback), fleet.Rollback},
		{"DEPLOYED, commit unanswered", ended(store.Deployed), left(fleet.Commit), fleet.Commit},
		{"still ACTIVATING: at its end", ended(store.Activating), left(fleet.Commit), ""},
		{"arm unanswered: the disarm is enough", ended(store.Failed), left(fleet.Arm), ""},
		{"hooks unanswered", ended(store.RolledBack), left(fleet.Hooks), ""},
		{"answered", ended(store.RolledBack), left(""), ""},
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
	mk := func() *store.Deployment {
		d := dep(store.RolledBack, true, ag("a", store.AgentRolledBack, "", true), store.DeploymentAgent{Name: "b", State: store.AgentFailed, Unanswered: "commit", Error: "no answer"})
		return d
	}
	back := commandID(mk(), fleet.Rollback, "b")
	tests := []struct {
		name      string
		r         fleet.Report
		msg       string // "": not an answer to the outcome command
		state     store.AgentState
		remaining string
	}{
		{"rolled back", fleet.Report{Agent: "b", CommandID: back, Outcome: fleet.Done}, "came back and was rolled back", store.AgentRolledBack, ""},
		{"rollback failed", fleet.Report{Agent: "b", CommandID: back, Outcome: fleet.CommandFailed, Error: "disk full"}, "FAILED: disk full; check it", store.AgentFailed, ""},
		{"progress", fleet.Report{Agent: "b", CommandID: back, Outcome: fleet.Progress}, "", store.AgentFailed, "commit"},
		{"the late commit answer", fleet.Report{Agent: "b", CommandID: commandID(mk(), fleet.Commit, "b"), Outcome: fleet.Done}, "", store.AgentFailed, "commit"},
		{"another agent", fleet.Report{Agent: "a", CommandID: commandID(mk(), fleet.Rollback, "a"), Outcome: fleet.Done}, "", store.AgentFailed, "commit"},
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
