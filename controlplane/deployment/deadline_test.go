package deployment

import (
	"strings"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/controlplane/fleet"
	"github.com/cutover-dev/cutover/controlplane/model"
)

func TestStepDeadline(t *testing.T) {
	custom := model.Stage2Deadlines{Arm: time.Minute, Hooks: 2 * time.Minute, Commit: 3 * time.Second}
	at := func(st model.Stage2Step, rollingBack bool, dl model.Stage2Deadlines) *model.Deployment {
		d := inStep(st, "")
		d.StepTime, d.RollingBack, d.Deadlines = t0, rollingBack, dl
		return d
	}
	sql := at(model.StepSQL, false, custom)
	sql.SQLPending = 1
	tests := []struct {
		name string
		d    *model.Deployment
		want time.Duration // 0: no deadline
	}{
		{"arm, default", at(model.StepArm, false, model.Stage2Deadlines{}), DefaultArmDeadline},
		{"arm", at(model.StepArm, false, custom), time.Minute},
		{"before_activate", at(model.StepBefore, false, custom), 2 * time.Minute},
		{"after_activate", at(model.StepAfter, false, custom), 2 * time.Minute},
		{"after_activate after a swap-back", at(model.StepAfter, true, custom), 2 * time.Minute},
		{"commit, default", at(model.StepCommit, false, model.Stage2Deadlines{}), DefaultCommitDeadline},
		{"commit", at(model.StepCommit, false, custom), 3 * time.Second},
		{"swap-back after a failed commit", at(model.StepCommit, true, custom), 3 * time.Second},
		{"sql: bounded by --sql-timeout instead", sql, 0},
		{"not in stage 2", &model.Deployment{State: model.Prepared, Step: model.StepArm, StepTime: t0}, 0},
		{"stage 2 not begun", &model.Deployment{State: model.Activating}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := StepDeadline(tt.d)
			if tt.want == 0 {
				if !got.IsZero() {
					t.Fatalf("StepDeadline = %v, want none", got)
				}
				return
			}
			if want := t0.Add(tt.want); !got.Equal(want) {
				t.Fatalf("StepDeadline = %v, want %v", got, want)
			}
		})
	}
	if got := Deadlines(&model.Environment{Deadlines: model.Stage2Deadlines{Commit: time.Second}}); got != (model.Stage2Deadlines{Arm: DefaultArmDeadline, Hooks: DefaultHooksDeadline, Commit: time.Second}) {
		t.Errorf("Deadlines = %+v", got)
	}
}

// TestDeadlineRules is the table of deadline.go: what follows a step whose
// deadline passed with some agents not answered.
func TestDeadlineRules(t *testing.T) {
	committed := func(name string) model.DeploymentAgent { return ag(name, model.AgentActive, "", true) }
	waiting := func(name string) model.DeploymentAgent { return ag(name, model.AgentActivating, "x", false) }
	tests := []struct {
		name       string
		d          *model.Deployment
		to         model.DeploymentState
		rollback   []string
		unanswered []string
		reason     []string
	}{
		{"arm: PREPARED again", inStep(model.StepArm, "", stepAg("a", "", ""), stepAg("b", "x", "")),
			model.Prepared, nil, []string{"b"}, []string{"readiness check (arm): agent b: no answer to arm within the deadline", "nothing was swapped", "PREPARED again"}},
		{"before_activate: PREPARED again", inStep(model.StepBefore, "", stepAg("a", "x", "")),
			model.Prepared, nil, []string{"a"}, []string{"before_activate hook failed: agent a: no answer to hooks"}},
		{"after_activate after success: DEPLOYED, naming it", inStep(model.StepAfter, model.Deployed, stepAg("a", "", ""), stepAg("b", "x", "")),
			model.Deployed, nil, []string{"b"}, []string{"after_activate hooks failed: agent b: no answer to hooks"}},
		{"after_activate after a failure: the failure", inStep(model.StepAfter, model.Failed, stepAg("a", "x", "")),
			model.Failed, nil, []string{"a"}, []string{"activation failed: x; after_activate hooks ran"}},
		{"commit: the others swapped: roll them back", inStep(model.StepCommit, "", committed("a"), waiting("b"), committed("c")),
			"", []string{"a", "c"}, []string{"b"}, []string{"activation failed: agent b: no answer to commit within the deadline"}},
		{"commit: one swapped and went back by itself", inStep(model.StepCommit, "", ag("a", model.AgentRolledBack, "", true), waiting("b")),
			model.RolledBack, nil, []string{"b"}, []string{"went back to the previous release; unreachable: b (may run the new releases until it comes back, when it is rolled back)"}},
		{"commit: nobody answered", inStep(model.StepCommit, "", waiting("a"), waiting("b")),
			model.Failed, nil, []string{"a", "b"}, []string{"activation did not complete", "no agent that answered had swapped; unreachable: a, b"}},
		{"commit: all had answered", inStep(model.StepCommit, "", committed("a")),
			model.Deployed, nil, nil, nil},
		{"swap-back: FAILED, naming it", func() *model.Deployment {
			d := dep(model.Activating, true, ag("a", model.AgentRolledBack, "", true), ag("b", model.AgentActive, "x", true))
			d.Step = model.StepCommit
			return d
		}(), model.Failed, nil, []string{"b"}, []string{"agent b: rollback failed: no answer to rollback", "may still run the new release"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := passDeadline(tt.d, "within the deadline")
			if strings.Join(got, ",") != strings.Join(tt.unanswered, ",") {
				t.Fatalf("passDeadline = %v, want %v", got, tt.unanswered)
			}
			for _, a := range tt.d.Agents {
				if a.Command != "" {
					t.Fatalf("agent %s still waited for: %q", a.Name, a.Command)
				}
			}
			st := next(tt.d)
			if st.advance {
				t.Fatalf("next = %+v: a deadline never advances", st)
			}
			if st.to != tt.to || strings.Join(st.rollback, ",") != strings.Join(tt.rollback, ",") {
				t.Fatalf("next = %+v, want to %q rollback %v", st, tt.to, tt.rollback)
			}
			for _, r := range tt.reason {
				if !strings.Contains(st.reason, r) {
					t.Errorf("reason %q lacks %q", st.reason, r)
				}
			}
		})
	}
}

func TestPassDeadlineMarksUnanswered(t *testing.T) {
	d := inStep(model.StepCommit, "", ag("a", model.AgentActive, "", true), ag("b", model.AgentActivating, "x", false))
	passDeadline(d, "within the commit deadline (2m)")
	a, b := d.Agents[0], d.Agents[1]
	if a.Unanswered != "" || a.State != model.AgentActive {
		t.Errorf("answered agent changed: %+v", a)
	}
	if b.Unanswered != string(fleet.Commit) || b.State != model.AgentFailed || !strings.Contains(b.Error, "no answer to commit within the commit deadline (2m)") {
		t.Errorf("unanswered agent: %+v", b)
	}
}
