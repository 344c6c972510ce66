package deployment

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/cutover-dev/cutover/controlplane/fleet"
	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/pkg/errkind"
)

// Stage 2 always ends (issue 14). Each step that waits for the agents has
// a deadline, an environment setting taken when stage 2 begins
// (Deployment.Deadlines): arm, the hook steps (before_activate,
// after_activate), and commit (also the swap-back that follows a failed
// commit). The SQL step has none of its own: it is bounded by the
// controller's --sql-timeout and the window (sql.go).
//
// When a step's deadline passes (the timer task, timed.go), or an operator
// ends stage 2 with `deploy abort --force` (ForceAbort), every agent that
// has not answered the step's command fails it, marked Unanswered with the
// command's kind (passDeadline), and the rules decide what follows exactly
// as if those agents had answered FAILED (next, rules.go):
//
//	step not answered        what follows
//	arm                      PREPARED again; every agent disarmed
//	before_activate          PREPARED again (after_activate first where before_activate ran)
//	commit                   the agents that answered and swapped roll back: ROLLED_BACK,
//	                         FAILED if a rollback fails or none that answered had swapped;
//	                         the unanswered ones are named
//	swap-back (rollback)     FAILED, naming them
//	after_activate           the ending decided before (DEPLOYED, PREPARED, …), naming them
//
// The commands the unanswered agents were sent are forgotten (never
// resent when they reconnect). An agent that left commit or rollback
// unanswered is brought to the outcome when it comes back (outcome.go).

// Default stage 2 deadlines, used when the environment sets none.
const (
	DefaultArmDeadline    = 10 * time.Minute
	DefaultHooksDeadline  = 10 * time.Minute
	DefaultCommitDeadline = 2 * time.Minute
)

// Deadlines returns env's stage 2 deadlines with the defaults filled in.
func Deadlines(env *model.Environment) model.Stage2Deadlines {
	return withDefaults(env.Deadlines)
}

func withDefaults(dl model.Stage2Deadlines) model.Stage2Deadlines {
	if dl.Arm <= 0 {
		dl.Arm = DefaultArmDeadline
	}
	if dl.Hooks <= 0 {
		dl.Hooks = DefaultHooksDeadline
	}
	if dl.Commit <= 0 {
		dl.Commit = DefaultCommitDeadline
	}
	return dl
}

// FormatDeadlines says dl in words: "arm 10m, hooks 10m, commit 2m".
func FormatDeadlines(dl model.Stage2Deadlines) string {
	dl = withDefaults(dl)
	return fmt.Sprintf("arm %s, hooks %s, commit %s", FormatTTL(dl.Arm), FormatTTL(dl.Hooks), FormatTTL(dl.Commit))
}

// stepLimit is how long the step d is in may take, and its name; 0 when
// no deadline applies (not in stage 2, or its SQL step).
func stepLimit(d *model.Deployment) (time.Duration, string) {
	if d.State != model.Activating || d.StepTime.IsZero() || needsSQL(d) || dbStep(d) != "" || d.Step == model.StepContract {
		return 0, ""
	}
	dl := withDefaults(d.Deadlines)
	switch {
	case d.Step == model.StepArm:
		return dl.Arm, "arm"
	case d.Step == model.StepBefore, d.Step == model.StepAfter:
		return dl.Hooks, "hooks"
	case d.RollingBack:
		return dl.Commit, "commit (swap-back)"
	case d.Step == model.StepCommit:
		return dl.Commit, "commit"
	}
	return 0, ""
}

// StepDeadline is when the step of stage 2 that d is in must have ended;
// zero when none applies (not ACTIVATING, or in its SQL step).
func StepDeadline(d *model.Deployment) time.Time {
	limit, _ := stepLimit(d)
	if limit == 0 {
		return time.Time{}
	}
	return d.StepTime.Add(limit)
}

// passDeadline fails, in d, every agent that has not answered the command
// of the current step, saying why (which deadline passed, or who ended
// stage 2), and marks it Unanswered with the command's kind. It returns
// their names. It is pure; next(d) then decides what follows.
func passDeadline(d *model.Deployment, why string) []string {
	kind := phase(d)
	var names []string
	for i := range d.Agents {
		a := &d.Agents[i]
		if a.Command == "" {
			continue
		}
		names = append(names, a.Name)
		msg := fmt.Sprintf("no answer to %s %s: unreachable or stuck, what it did is not known", kind, why)
		if kind == fleet.Rollback {
			msg = rollbackFailed + msg
		}
		a.Command, a.Unanswered = "", string(kind)
		a.State, a.Error, a.StepError = model.AgentFailed, msg, msg
	}
	return names
}

// unanswered names d's agents that left commit or rollback unanswered,
// with what follows for them, or "".
func unanswered(d *model.Deployment) string {
	var names []string
	for _, a := range d.Agents {
		if a.Unanswered == string(fleet.Commit) || a.Unanswered == string(fleet.Rollback) {
			names = append(names, a.Name)
		}
	}
	if len(names) == 0 {
		return ""
	}
	return fmt.Sprintf("; unreachable: %s (may run the new releases until it comes back, when it is rolled back)", strings.Join(names, ", "))
}

// overdue ends the step of an ACTIVATING deployment whose deadline passed
// at now. Call with s.mu held.
func (s *Service) overdue(id string, now time.Time) error {
	_, err := s.endStep(id, ControllerActor, func(d *model.Deployment) (string, error) {
		limit, name := stepLimit(d)
		if limit == 0 || now.Before(d.StepTime.Add(limit)) {
			return "", errUnchanged
		}
		return fmt.Sprintf("within the %s deadline (%s)", name, FormatTTL(limit)), nil
	})
	return err
}

// ForceAbort ends a stuck stage 2 (ACTIVATING) as if the deadline of the
// step it is in had passed now (deadline.go): the agents that have not
// answered are named, the others disarmed or rolled back. A deployment not
// in stage 2 is aborted as by Abort. reason is required. Errors: NotFound;
// InvalidArgument without a reason; FailedPrecondition while the SQL
// script runs (it is bounded by --sql-timeout) or once the deployment
// ended.
func (s *Service) ForceAbort(ctx context.Context, actor, id, reason string) (*model.Deployment, error) {
	if strings.TrimSpace(reason) == "" {
		return nil, fmt.Errorf("abort --force needs a reason (--reason): it ends stage 2 without waiting for the agents; nothing was changed: %w", errkind.InvalidArgument)
	}
	d, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if d.State != model.Activating {
		return s.Abort(ctx, actor, id, reason)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.endStep(id, actor, func(d *model.Deployment) (string, error) {
		switch {
		case d.State != model.Activating:
			return "", fmt.Errorf("deployment %s is %s now, no longer in stage 2; nothing was changed: %w", d.ID, d.State, errkind.FailedPrecondition)
		case needsSQL(d), dbStep(d) != "":
			return "", fmt.Errorf("deployment %s is running its SQL script, which ends by itself (bounded by the controller's --sql-timeout and the window); retry once it moved on; nothing was changed: %w", d.ID, errkind.FailedPrecondition)
		}
		return fmt.Sprintf("when %s ended stage 2 (abort --force: %s)", actor, reason), nil
	})
}

// endStep ends the current step of deployment id without waiting for the
// agents that have not answered: why returns how to say it (or
// errUnchanged). The unanswered commands are forgotten, so that they are
// never resent. Call with s.mu held.
func (s *Service) endStep(id, actor string, why func(d *model.Deployment) (string, error)) (*model.Deployment, error) {
	var out []fleet.Outgoing
	ended := false
	d, err := s.update(id, func(tx model.Tx, d *model.Deployment) error {
		w, err := why(d)
		if err != nil {
			return err
		}
		step := d.Step
		if d.RollingBack && step == model.StepCommit {
			step = "swap-back"
		}
		names := passDeadline(d, w)
		msg := fmt.Sprintf("stage 2 step %s ended: every agent had answered", step)
		if len(names) > 0 {
			msg = fmt.Sprintf("stage 2 step %s ended without waiting for %s: no answer %s", step, strings.Join(names, ", "), w)
		}
		note(d, s.clock(), actor, msg)
		before := d.State
		out, err = s.take(tx, d, next(d))
		ended = d.State != before && d.State.Final()
		return err
	})
	if err != nil || d == nil {
		return d, err
	}
	s.log.Warn("stage 2 step ended without waiting for every agent", "deployment", d.ID, "environment", d.Environment, "actor", actor, "state", d.State, "step", d.Step)
	s.fleet.Forget(d.ID)       // the unanswered commands are never resent
	s.afterStep(d, out, ended) // finished also sends what brings the unanswered agents to the outcome
	return d, nil
}

// StepName is the name of the step of stage 2 d is in ("swap-back" for
// the rollback that follows a failed commit); "" outside stage 2.
func StepName(d *model.Deployment) string {
	switch {
	case d.State != model.Activating:
		return ""
	case d.RollingBack && d.Step == model.StepCommit:
		return "swap-back"
	case d.Step == "" && needsSQL(d):
		return string(model.StepSQL)
	case d.Step == "":
		return string(model.StepCommit)
	}
	return string(d.Step)
}

// StageDeadlines returns the stage 2 deadlines of deployment id: its own
// once stage 2 began, its environment's before. Errors: NotFound.
func (s *Service) StageDeadlines(ctx context.Context, id string) (model.Stage2Deadlines, error) {
	var dl model.Stage2Deadlines
	err := s.store.View(func(tx model.Tx) error {
		d, err := tx.Deployment(id)
		if err != nil {
			return err
		}
		if d.Deadlines != (model.Stage2Deadlines{}) {
			dl = withDefaults(d.Deadlines)
			return nil
		}
		env, err := tx.Environment(d.Environment)
		if err != nil {
			return err
		}
		dl = Deadlines(env)
		return nil
	})
	return dl, err
}
