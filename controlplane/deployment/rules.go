package deployment

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cutover-dev/cutover/controlplane/fleet"
	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/pkg/errkind"
)

// transitions lists, for each state, the states it may move to.
// PREPARED → FAILED happens only in a single-stage deployment whose stage 2
// cannot start (an agent went away between the stages). DEPLOYED →
// ROLLED_BACK is the rollback command (RollbackDeployment).
//
// ACTIVATING → PREPARED is a stage 2 that failed while nothing had changed
// yet, so that continue can simply be called again (AfterFailure says
// which failures those are; the failure is in the history).
var transitions = map[model.DeploymentState][]model.DeploymentState{
	model.Planned:    {model.Preparing, model.Aborted},
	model.Preparing:  {model.Prepared, model.Failed, model.Aborted},
	model.Prepared:   {model.Activating, model.Aborted, model.Expired, model.Failed},
	model.Activating: {model.Deployed, model.Failed, model.RolledBack, model.Prepared},
	model.Deployed:   {model.RolledBack},
}

// Failures of stage 2, and the state each leaves a deployment in. A failure
// before any agent was sent commit and before any SQL committed leaves
// every front-end and the database as they were: the deployment is PREPARED
// again (the failure in its history) and continue can be called again.
// From the first commit sent or the first SQL group committed on, a failure
// ends it: FAILED, or ROLLED_BACK once an agent swapped.
//
//	failure                                               state after
//	an agent not connected, require_prepared unmet        PREPARED (continue refused, nothing begun)
//	arm failed on an agent (a damaged release, …)         PREPARED
//	a before_activate hook failed                         PREPARED
//	the SQL failed, the database unchanged: unreachable,
//	  its lock not had, a statement refused inside a
//	  transaction before any group committed              PREPARED
//	the SQL failed otherwise: after a group committed,
//	  inside a no-transaction migration, the database
//	  changed since prepare (prepare again)               FAILED
//	commit failed before any swap                         FAILED
//	commit failed after a swap                            ROLLED_BACK (FAILED if a rollback failed)
type Failure string

// The stage 2 failures of the table above.
const (
	FailNotReady      Failure = "not ready"
	FailArm           Failure = "arm"
	FailBeforeHook    Failure = "before_activate"
	FailSQLUnchanged  Failure = "sql, database unchanged"
	FailSQLChanged    Failure = "sql, database changed"
	FailCommit        Failure = "commit, no swap"
	FailCommitSwapped Failure = "commit, swapped"
)

// AfterFailure is the state a stage 2 failure leaves a deployment in
// (the table above).
func AfterFailure(f Failure) model.DeploymentState {
	switch f {
	case FailNotReady, FailArm, FailBeforeHook, FailSQLUnchanged:
		return model.Prepared
	case FailCommitSwapped:
		return model.RolledBack
	}
	return model.Failed
}

// againHint ends the reason of a stage 2 that went back to PREPARED.
const againHint = "; the deployment is PREPARED again: fix the cause, then continue again"

// CanTransition says whether a deployment may move from one state to another.
func CanTransition(from, to model.DeploymentState) bool {
	return slices.Contains(transitions[from], to)
}

// Busy says whether s holds its environment: at most one deployment per
// environment may be between PREPARING and ACTIVATING, PREPARED included.
func Busy(s model.DeploymentState) bool {
	return s == model.Preparing || s == model.Prepared || s == model.Activating
}

// DefaultPreparedTTL is how long a PREPARED deployment stays valid when its
// environment does not say.
const DefaultPreparedTTL = 96 * time.Hour

// DefaultKeepReleases is how many staged releases per application agents
// keep when the environment sets no keep_releases.
const DefaultKeepReleases = 3

// PreparedTTL returns env's prepared_ttl, or the default when unset.
func PreparedTTL(env *model.Environment) time.Duration {
	if env.PreparedTTL <= 0 {
		return DefaultPreparedTTL
	}
	return env.PreparedTTL
}

// KeepReleases returns env's keep_releases, or the default when unset.
func KeepReleases(env *model.Environment) int32 {
	if env.KeepReleases <= 0 {
		return DefaultKeepReleases
	}
	return env.KeepReleases
}

// transition moves d to state to, recording it in its history and setting
// the time of the state. It panics on a move the table forbids: callers
// check first (that is a bug, not an input error).
func transition(d *model.Deployment, to model.DeploymentState, now time.Time, actor, msg string) {
	if !CanTransition(d.State, to) {
		panic(fmt.Sprintf("deployment %s: transition %s → %s is not allowed", d.ID, d.State, to))
	}
	d.State = to
	d.ScheduledTime = time.Time{} // a schedule holds only while PREPARED
	d.History = append(d.History, model.Transition{State: to, Time: now, Actor: actor, Message: msg})
	switch to {
	case model.Preparing:
		d.PrepareTime = now
	case model.Prepared:
		d.PreparedTime = now
	case model.Activating:
		d.ActivateTime = now
	}
	if to.Final() {
		for i := range d.Agents {
			d.Agents[i].Command = "" // a final deployment waits for no answer
		}
		d.FinishTime = now
		if to != model.Deployed {
			d.Error = msg
		}
	}
}

// checkStartable refuses to move d into PREPARING: it must be PLANNED and no
// other deployment of its environment may be busy. others are the
// environment's deployments.
func checkStartable(d *model.Deployment, others []*model.Deployment, verb string) error {
	if d.State != model.Planned {
		return fmt.Errorf("deployment %s is %s, not PLANNED: only a planned deployment can %s; create a new one with `cutoverctl deploy create`; nothing was changed: %w",
			d.ID, d.State, verb, errkind.FailedPrecondition)
	}
	for _, o := range others {
		if o.ID != d.ID && o.Environment == d.Environment && Busy(o.State) {
			return fmt.Errorf("deployment %s of environment %s is %s, and only one deployment per environment may be between PREPARING and ACTIVATING: continue it, wait for it to end, or abort it (`cutoverctl deploy abort %s`); deployment %s is unchanged: %w",
				o.ID, o.Environment, o.State, o.ID, d.ID, errkind.FailedPrecondition)
		}
	}
	return nil
}

// checkPrepare refuses stage 1 on its own when the environment deploys in a
// single stage.
func checkPrepare(d *model.Deployment, env *model.Environment, others []*model.Deployment) error {
	if !env.TwoStage {
		return fmt.Errorf("environment %s deploys in a single stage (two_stage is off), so deployment %s cannot be prepared on its own: run it with `cutoverctl deploy start %s`, or turn two-stage on with `cutoverctl env update %s --two-stage`; nothing was changed: %w",
			env.Name, d.ID, d.ID, env.Name, errkind.FailedPrecondition)
	}
	return checkStartable(d, others, "be prepared")
}

// checkContinue refuses stage 2 unless d is PREPARED, has not expired at
// now, and has the approval env may require.
func checkContinue(d *model.Deployment, env *model.Environment, now time.Time) error {
	if err := checkContinuable(d, now); err != nil {
		return err
	}
	return checkApproval(d, env)
}

// checkContinuable refuses stage 2 unless d is PREPARED and has not
// expired at now: checkContinue without the approval.
func checkContinuable(d *model.Deployment, now time.Time) error {
	if expired(d, now) {
		return expiredError(d)
	}
	if d.State != model.Prepared {
		return fmt.Errorf("deployment %s is %s, not PREPARED: only a prepared deployment can continue; nothing was changed: %w",
			d.ID, d.State, errkind.FailedPrecondition)
	}
	return nil
}

// checkAbort refuses to abort once stage 2 started.
func checkAbort(d *model.Deployment) error {
	if !CanTransition(d.State, model.Aborted) {
		return fmt.Errorf("deployment %s is %s: only PLANNED, PREPARING or PREPARED deployments can be aborted; nothing was changed: %w",
			d.ID, d.State, errkind.FailedPrecondition)
	}
	return nil
}

// checkActivatable says whether stage 2 may start with the given connected
// agents: every agent that staged d must be connected (unless it was
// removed: known holds the names of the agents the controller still
// knows), at least one must be, and with requirePrepared every connected
// agent must hold every release of d (otherwise arm stages them there
// first). It returns what is in the way, in words ("" when nothing is).
func checkActivatable(d *model.Deployment, connected []fleet.AgentView, known map[string]bool, requirePrepared bool) string {
	byName := map[string]bool{}
	for _, v := range connected {
		byName[v.Name] = true
	}
	var problems []string
	for _, a := range d.Agents {
		if !byName[a.Name] && known[a.Name] {
			problems = append(problems, fmt.Sprintf("agent %s is not connected", a.Name))
		}
	}
	if requirePrepared {
		var lacking []string
		for _, v := range connected {
			for _, app := range d.Applications {
				if !v.Holds(app.Name, app.ReleaseID) {
					lacking = append(lacking, fmt.Sprintf("%s (release %s of %s)", v.Name, short(app.ReleaseID), app.Name))
				}
			}
		}
		if len(lacking) > 0 {
			problems = append(problems, "require_prepared is set and these front-ends do not have the releases staged: "+strings.Join(lacking, ", "))
		}
	}
	if len(connected) == 0 {
		problems = append(problems, fmt.Sprintf("no agent of environment %s is connected", d.Environment))
	}
	return strings.Join(problems, "; ")
}

// step is what the controller does next for a deployment.
type step struct {
	// to is the state to move to; empty: stay.
	to model.DeploymentState
	// reason goes into the history (and error, for a failure).
	reason string
	// rollback lists the agents to send rollback to (stage 2 failed after swaps).
	rollback []string
	// rollbackFailed: a rollback by command failed on some agent; the
	// deployment stays DEPLOYED with reason as its error.
	rollbackFailed bool
	// disarm: with rollbackFailed, the rollback stopped at arm; every agent
	// is disarmed.
	disarm bool
	// advance: the current step of stage 2 succeeded; go on to the next.
	advance bool
}

// next decides what follows the answers recorded in d. It is pure.
func next(d *model.Deployment) step {
	pending := slices.ContainsFunc(d.Agents, func(a model.DeploymentAgent) bool { return a.Command != "" })
	failures := agentErrors(d)
	if d.State == model.Deployed {
		if !d.RollingBack || pending {
			return step{}
		}
		return nextRollbackByCommand(d)
	}
	if d.State == model.Prepared { // a staging in the background changes no state
		return step{}
	}
	switch phase(d) {
	case fleet.Stage:
		switch {
		case failures != "": // nothing runs yet: stop at once
			return step{to: model.Failed, reason: "stage 1 failed: " + failures + "; nothing runs differently on any front-end"}
		case pending:
			return step{}
		}
		return step{to: model.Prepared, reason: "every agent has the releases staged"}
	case fleet.Arm:
		switch {
		case pending: // wait for every answer: nobody commits unless all armed
			return step{}
		case stepErrors(d) != "":
			return step{to: AfterFailure(FailArm), reason: "stage 2 stopped at the readiness check (arm): " + stepErrors(d) + "; nothing was swapped and the database was not changed, every front-end runs what it ran before" + againHint}
		}
		return step{advance: true}
	case fleet.Hooks:
		switch {
		case pending:
			return step{}
		case d.Step == model.StepAfter:
			return step{to: d.Ending, reason: afterReason(d, stepErrors(d))}
		case stepErrors(d) != "":
			return step{to: AfterFailure(FailBeforeHook), reason: "stage 2 stopped before the SQL: a before_activate hook failed: " + stepErrors(d) + "; nothing was swapped and the database was not changed" + againHint}
		}
		return step{advance: true}
	case fleet.Commit:
		switch {
		case pending: // wait for every answer, so that we know who swapped
			return step{}
		case failures == "":
			return step{to: model.Deployed, reason: "every agent runs the new releases"}
		}
		var back []string
		swapped := false
		for _, a := range d.Agents {
			swapped = swapped || !a.SwapTime.IsZero() || a.State == model.AgentActive
			if a.State == model.AgentActive || (a.State == model.AgentFailed && !a.SwapTime.IsZero()) {
				back = append(back, a.Name)
			}
		}
		switch {
		case len(back) > 0:
			return step{rollback: back, reason: "activation failed: " + failures}
		case swapped:
			return step{to: AfterFailure(FailCommitSwapped), reason: "activation failed: " + failures + "; the agents that swapped went back to the previous release" + unanswered(d)}
		case unanswered(d) != "":
			return step{to: AfterFailure(FailCommit), reason: "activation did not complete: " + failures + "; no agent that answered had swapped" + unanswered(d)}
		}
		return step{to: AfterFailure(FailCommit), reason: "activation failed before any swap: " + failures + "; every front-end runs what it ran before"}
	case fleet.Rollback:
		if pending {
			return step{}
		}
		for _, a := range d.Agents {
			if a.State == model.AgentFailed && strings.HasPrefix(a.Error, rollbackFailed) {
				return step{to: model.Failed, reason: d.Error + "; then " + failures + "; those front-ends may still run the new release: check them" + unanswered(d)}
			}
		}
		return step{to: model.RolledBack, reason: d.Error + "; every agent that swapped went back to the previous release" + unanswered(d)}
	}
	return step{}
}

const rollbackFailed = "rollback failed: "

// agentErrors joins the errors of the agents that failed, or "".
func agentErrors(d *model.Deployment) string {
	var out []string
	for _, a := range d.Agents {
		if a.Error != "" && (a.State == model.AgentFailed || a.State == model.AgentRolledBack) {
			out = append(out, fmt.Sprintf("agent %s: %s", a.Name, a.Error))
		}
	}
	return strings.Join(out, "; ")
}

// spread is the time between the first and the last of d's agents' times
// (zero ones left out).
func spread(d *model.Deployment, at func(model.DeploymentAgent) time.Time) time.Duration {
	var first, last time.Time
	for _, a := range d.Agents {
		t := at(a)
		if t.IsZero() {
			continue
		}
		if first.IsZero() || t.Before(first) {
			first = t
		}
		if t.After(last) {
			last = t
		}
	}
	return last.Sub(first)
}

// finishDeployed fills the figures of a deployment that just became
// DEPLOYED and records what the environment now runs.
func finishDeployed(d *model.Deployment, env *model.Environment, now time.Time) {
	d.ActivationSpread = spread(d, func(a model.DeploymentAgent) time.Time { return a.SwapTime })
	if env.DeployedVersions == nil {
		env.DeployedVersions = map[string]model.DeployedVersion{}
	}
	for i, app := range d.Applications {
		if prev, ok := env.DeployedVersions[app.Name]; ok {
			d.Applications[i].Previous = &prev
		}
		env.DeployedVersions[app.Name] = model.DeployedVersion{
			VersionLabel: app.VersionLabel, ReleaseID: app.ReleaseID, DeploymentID: d.ID, DeployTime: now}
	}
	env.UpdateTime = now
}
