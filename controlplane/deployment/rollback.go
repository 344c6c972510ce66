package deployment

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cutover-dev/cutover/controlplane/fleet"
	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/pkg/appspec"
	"github.com/cutover-dev/cutover/pkg/errkind"
)

// This file holds the rollback command: a DEPLOYED deployment is undone on
// every agent, atomically, the same way as stage 2 swaps, and as an
// activation of the releases it goes back to, hooks included: every agent
// arms the releases that ran before (`current.next`, under the
// deployment's id and its RollbackAttempt in its journal, apart from the
// deployment's own activation); the before_activate hooks of
// those releases run where their plan says; only then does every agent
// commit (swap back, restart, health, their validate hooks); last, their
// after_activate hooks run (after a failure, only where before_activate
// ran, so that what it suspended is resumed). A failure before the commit
// disarms every agent: nothing was swapped. It ends ROLLED_BACK; the
// environment's deployed versions go back with it. The database is rolled
// back only with RollbackOptions.WithDatabase (sqlphases.go, sqlundo.go):
// the contract phase is undone before the arm, the expand phase after the
// swap back.

// DatabaseNotRolledBack is said wherever a rollback is reported.
const DatabaseNotRolledBack = "the database is NOT rolled back: the SQL that stage 2 ran stays applied"

// Rollback starts the rollback of a DEPLOYED deployment: every agent that
// activated it arms the releases that ran before; once all have, the
// before_activate hooks of those releases run, then all commit (with their
// validate hooks), then their after_activate hooks run. The deployment
// stays DEPLOYED until they all have swapped back, then becomes
// ROLLED_BACK; if one fails to arm or a before_activate hook fails, all
// are disarmed and it stays DEPLOYED with the error (nothing swapped), and
// the rollback can be retried.
// With opt.WithDatabase the database is rolled back too (planRollbackDB).
// Errors: NotFound; FailedPrecondition when it is not DEPLOYED, is being
// rolled back, is not what the environment runs now, had nothing before
// it, another deployment of the environment is ACTIVATING, or
// --with-database would undo an irreversible migration without --force;
// InvalidArgument for --force without a reason.
func (s *Service) Rollback(ctx context.Context, actor, id string, opt RollbackOptions) (*model.Deployment, error) {
	reason := opt.Reason
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []fleet.Outgoing
	d, err := s.update(id, func(tx model.Tx, d *model.Deployment) error {
		env, err := tx.Environment(d.Environment)
		if err != nil {
			return err
		}
		others, err := tx.Deployments(d.Environment)
		if err != nil {
			return err
		}
		if err := checkRollback(d, env, others); err != nil {
			return err
		}
		connected := s.fleet.Connected(d.Environment)
		if missing := notConnected(d, connected); len(missing) > 0 {
			return fmt.Errorf("agents %s of deployment %s are not connected, and every agent that runs it must go back: reconnect them, then retry; nothing was changed: %w",
				strings.Join(missing, ", "), d.ID, errkind.FailedPrecondition)
		}
		hooks, unknown, err := rollbackHooks(tx, d)
		if err != nil {
			return err
		}
		dbMsg, first, err := planRollbackDB(tx, d, opt)
		if err != nil {
			return err
		}
		plan := planHooks(hooks, labelsOf(agentsOf(d, connected)))
		msg := fmt.Sprintf("rollback requested by %s: %s; %s", actor, rollbackSteps(plan), dbMsg)
		if len(unknown) > 0 {
			msg += fmt.Sprintf("; WARNING: the controller no longer holds the manifest of %s, so no hook of it runs", strings.Join(unknown, ", "))
		}
		if reason != "" {
			msg += "; reason: " + reason
		}
		note(d, s.clock(), actor, msg)
		d.RollingBack, d.Error, d.Ending, d.RollbackError = true, "", "", ""
		d.RollbackAttempt = len(d.History) // new each time: a retry is an activation of its own on the agents
		for i := range d.Agents {
			a := &d.Agents[i]
			a.Error, a.RollbackSwapTime, a.BeforeRan, a.RollbackPlan = "", time.Time{}, false, plan[a.Name]
		}
		if first == model.StepUndoContract {
			d.Step, d.StepTime = first, s.clock()
			return nil
		}
		out = s.enterRollbackStep(d, model.StepArm)
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.log.Warn("rolling back a deployed deployment", "deployment", d.ID, "environment", d.Environment, "actor", actor, "agents", len(out))
	s.send(out)
	if dbStep(d) != "" {
		s.spawnDB(d.ID, false)
	}
	s.watchers.publish(d)
	return d, nil
}

// agentsOf returns the views of d's agents among views.
func agentsOf(d *model.Deployment, views []fleet.AgentView) []fleet.AgentView {
	var out []fleet.AgentView
	for _, v := range views {
		if slices.ContainsFunc(d.Agents, func(a model.DeploymentAgent) bool { return a.Name == v.Name }) {
			out = append(out, v)
		}
	}
	return out
}

// rollbackSteps says what a rollback with the hook plan plan does.
func rollbackSteps(plan map[string][]model.HookRef) string {
	steps := []string{"every agent arms the releases that ran before"}
	if n := countKind(plan, appspec.BeforeActivate); n > 0 {
		steps = append(steps, fmt.Sprintf("their before_activate hooks run (%d)", n))
	}
	commit := "all swap back together"
	if n := countKind(plan, appspec.Validate); n > 0 {
		commit += fmt.Sprintf(" with their validate hooks (%d)", n)
	}
	steps = append(steps, commit)
	if n := countKind(plan, appspec.AfterActivate); n > 0 {
		steps = append(steps, fmt.Sprintf("their after_activate hooks run (%d)", n))
	}
	return strings.Join(steps, ", then ")
}

// rollbackHooks reads the hooks of the releases that ran before d. A
// release whose manifest the controller no longer holds (collected) has
// none, and is named in unknown: refusing would block an emergency
// rollback that the agents, which keep a rollback's target, can do.
func rollbackHooks(tx model.Tx, d *model.Deployment) (hooks []appHooks, unknown []string, err error) {
	for _, r := range previousReleases(d) {
		h, err := releaseHooks(tx, []fleet.ReleaseRef{r})
		switch {
		case errors.Is(err, errkind.NotFound):
			unknown = append(unknown, fmt.Sprintf("release %s of %s", short(r.ReleaseID), r.Application))
		case err != nil:
			return nil, nil, fmt.Errorf("read the hooks of the releases that ran before deployment %s: %w", d.ID, err)
		}
		hooks = append(hooks, h...)
	}
	return hooks, unknown, nil
}

// previousReleases returns the releases that ran before d, for each of its
// applications.
func previousReleases(d *model.Deployment) []fleet.ReleaseRef {
	out := make([]fleet.ReleaseRef, 0, len(d.Applications))
	for _, app := range d.Applications {
		out = append(out, fleet.ReleaseRef{Application: app.Name, ReleaseID: app.PreviousReleaseID})
	}
	return out
}

// Settled says whether d waits for nothing more: it is in a final state
// and no rollback of it runs. RollingBack stays set on a deployment that
// ended ROLLED_BACK (or FAILED after stage 2's swap-back); only a DEPLOYED
// one can still be rolling back.
func Settled(d *model.Deployment) bool {
	return d.State.Final() && !(d.State == model.Deployed && d.RollingBack)
}

// CanRollback says whether d can be rolled back as env stands (it is
// DEPLOYED, not rolling back, what env runs now, and each application ran
// a release before it): nil, or the FailedPrecondition Rollback would
// return. Pages ask it before they show a Roll back button; Rollback
// checks again, with the other deployments of env.
func CanRollback(d *model.Deployment, env *model.Environment) error {
	return checkRollback(d, env, nil)
}

// checkRollback refuses the rollback command unless d is DEPLOYED, is what
// env runs now for each of its applications, each had a release before it,
// and no other deployment of env is ACTIVATING.
func checkRollback(d *model.Deployment, env *model.Environment, others []*model.Deployment) error {
	if d.State != model.Deployed {
		return fmt.Errorf("deployment %s is %s: only a DEPLOYED deployment can be rolled back; nothing was changed: %w", d.ID, d.State, errkind.FailedPrecondition)
	}
	if d.RollingBack {
		return fmt.Errorf("deployment %s is being rolled back already: follow it with `cutoverctl deploy watch %s`: %w", d.ID, d.ID, errkind.FailedPrecondition)
	}
	for _, o := range others {
		if o.ID != d.ID && o.State == model.Activating {
			return fmt.Errorf("deployment %s of environment %s is ACTIVATING: wait for it to end, then retry; nothing was changed: %w", o.ID, env.Name, errkind.FailedPrecondition)
		}
	}
	for _, a := range d.Applications {
		if v := env.DeployedVersions[a.Name]; v.DeploymentID != d.ID {
			return fmt.Errorf("application %s of environment %s now runs release %s from deployment %s, not from %s: only what runs now can be rolled back (roll back %s first); nothing was changed: %w",
				a.Name, env.Name, short(v.ReleaseID), v.DeploymentID, d.ID, v.DeploymentID, errkind.FailedPrecondition)
		}
		if a.PreviousReleaseID == "" {
			return fmt.Errorf("application %s ran no release in environment %s before deployment %s: there is nothing to go back to; nothing was changed: %w",
				a.Name, env.Name, d.ID, errkind.FailedPrecondition)
		}
	}
	return nil
}

// notConnected returns the names of d's agents that are not connected.
func notConnected(d *model.Deployment, connected []fleet.AgentView) []string {
	var out []string
	for _, a := range d.Agents {
		if !slices.ContainsFunc(connected, func(v fleet.AgentView) bool { return v.Name == a.Name }) {
			out = append(out, a.Name)
		}
	}
	return out
}

// enterRollbackStep moves the rollback of d to step st (arm,
// before_activate, commit or after_activate) and returns its commands: arm
// and commit to every agent, a hook step to the agents whose rollback plan
// has hooks of its kind (after_activate after a failure: only where
// before_activate ran).
func (s *Service) enterRollbackStep(d *model.Deployment, st model.Stage2Step) []fleet.Outgoing {
	d.Step, d.StepTime = st, s.clock()
	_, hk := stepKind(st)
	out := make([]fleet.Outgoing, 0, len(d.Agents))
	for i := range d.Agents {
		a := &d.Agents[i]
		a.StepError = ""
		if st == model.StepBefore || st == model.StepAfter {
			if len(refsIn(a.RollbackPlan, hk)) == 0 || (st == model.StepAfter && d.Ending != model.RolledBack && !a.BeforeRan) {
				continue
			}
			a.BeforeRan = a.BeforeRan || st == model.StepBefore
		}
		a.Command = rollbackCommandID(d, fleet.CommandKind(st), a.Name)
		out = append(out, fleet.Outgoing{Agent: a.Name, Command: rollbackCommand(d, a)})
	}
	return out
}

// rollbackCommand builds the command of the rollback's current step for
// agent a: the releases that ran before d, under d's RollbackAttempt; the arm
// only checks them (an agent never deletes a rollback target); the hook
// steps and the commit carry a's hooks of their kind from its rollback
// plan (the hooks of those releases).
func rollbackCommand(d *model.Deployment, a *model.DeploymentAgent) fleet.Command {
	kind, hk := stepKind(d.Step)
	c := fleet.Command{Kind: kind, ID: a.Command, DeploymentID: d.ID, RollbackAttempt: d.RollbackAttempt, Releases: previousReleases(d)}
	switch kind {
	case fleet.Arm:
		c.VerifyOnly = true
	case fleet.Hooks, fleet.Commit:
		c.Hooks = refsIn(a.RollbackPlan, hk)
	}
	if kind == fleet.Commit {
		c.KeepReleases = d.KeepReleases
	}
	return c
}

// applyRollbackReport records the answer r to the rollback's arm or commit.
func applyRollbackReport(a *model.DeploymentAgent, kind fleet.CommandKind, r fleet.Report) {
	switch {
	case r.Outcome == fleet.CommandFailed:
		a.State = model.AgentFailed
	case r.Outcome == fleet.Done && kind == fleet.Arm:
		a.State = model.AgentArmed
	case r.Outcome == fleet.Done:
		a.State, a.SwappedBack, a.RollbackSwapTime = model.AgentRolledBack, true, r.SwapTime
	}
}

// nextRollbackByCommand decides what follows the agents' answers to the
// current step of the rollback command, once all have answered. It is
// pure.
func nextRollbackByCommand(d *model.Deployment) step {
	failures := stepErrors(d)
	switch {
	case d.Step == model.StepAfter:
		return afterRollback(d, failures)
	case d.Step == model.StepArm && failures != "":
		return step{rollbackFailed: true, disarm: true, reason: fmt.Sprintf("rollback stopped at arm: %s; every agent was disarmed and nothing was swapped: every front-end still runs the releases of %s; fix those front-ends, then retry with `cutoverctl deploy rollback %s`", failures, d.ID, d.ID)}
	case d.Step == model.StepBefore && failures != "":
		return step{rollbackFailed: true, disarm: true, reason: fmt.Sprintf("rollback stopped at the before_activate hooks of the releases that ran before: %s; every agent was disarmed and nothing was swapped: every front-end still runs the releases of %s; fix the hook's cause, then retry with `cutoverctl deploy rollback %s`", failures, d.ID, d.ID)}
	case d.Step != model.StepCommit:
		return step{advance: true}
	case failures != "":
		return step{rollbackFailed: true, reason: fmt.Sprintf("rollback failed at commit: %s; those front-ends still run the releases of %s, the others went back; retry with `cutoverctl deploy rollback %s`", failures, d.ID, d.ID)}
	}
	return step{to: model.RolledBack, reason: rolledBackReason(d)}
}

// rolledBackReason is the reason of a rollback by command that committed.
func rolledBackReason(d *model.Deployment) string {
	return fmt.Sprintf("rolled back by command: every agent armed, then all swapped back together (spread %s) and run the releases that ran before %s again; %s", spread(d, rollbackSwapTime), d.ID, databaseSummary(d))
}

// afterRollback ends the rollback of d once its after_activate hooks
// answered: as decided before them (d.Ending), saying which failed. A
// failing after_activate hook does not undo the swap back.
func afterRollback(d *model.Deployment, failures string) step {
	also := ""
	if failures != "" {
		also = "; but after_activate hooks failed: " + failures + "; check those front-ends"
	}
	if d.Ending == model.RolledBack {
		return step{to: model.RolledBack, reason: rolledBackReason(d) + also}
	}
	return step{rollbackFailed: true, reason: d.RollbackError + "; after_activate hooks ran on the agents where before_activate ran" + also}
}

func rollbackSwapTime(a model.DeploymentAgent) time.Time { return a.RollbackSwapTime }

// endRollback applies st to a DEPLOYED deployment being rolled back and
// returns the commands to send. A rollback that ends, failed or not, runs
// its after_activate step first when that step has agents.
func (s *Service) endRollback(tx model.Tx, d *model.Deployment, st step, now time.Time) ([]fleet.Outgoing, error) {
	switch {
	case st.advance:
		if d.Step == model.StepArm {
			if out := s.enterRollbackStep(d, model.StepBefore); len(out) > 0 {
				return out, nil
			}
		}
		return s.enterRollbackStep(d, model.StepCommit), nil
	case st.rollbackFailed:
		var out []fleet.Outgoing
		if st.disarm {
			for i := range d.Agents {
				a := &d.Agents[i]
				a.State = model.AgentActive // it runs d's releases, as before
				out = append(out, fleet.Outgoing{Agent: a.Name, Command: fleet.Command{Kind: fleet.Disarm, ID: rollbackCommandID(d, fleet.Disarm, a.Name),
					DeploymentID: d.ID, RollbackAttempt: d.RollbackAttempt}})
			}
		}
		if d.Step != model.StepAfter {
			d.Ending, d.RollbackError = model.Deployed, st.reason
			if after := s.enterRollbackStep(d, model.StepAfter); len(after) > 0 {
				return append(out, after...), nil
			}
		}
		d.RollingBack, d.Error, d.RollbackError = false, st.reason, ""
		note(d, now, ControllerActor, st.reason)
		return out, nil
	case st.to == model.RolledBack:
		if entered, err := s.enterUndoExpandAfterSwapBack(tx, d); err != nil || entered {
			return nil, err
		}
		if d.Step != model.StepAfter {
			d.Ending = model.RolledBack
			if after := s.enterRollbackStep(d, model.StepAfter); len(after) > 0 {
				return after, nil
			}
		}
		env, err := tx.Environment(d.Environment)
		if err != nil {
			return nil, err
		}
		restoreDeployed(d, env, now)
		if err := tx.PutEnvironment(env); err != nil {
			return nil, err
		}
		d.RollbackSpread = spread(d, rollbackSwapTime)
		transition(d, model.RolledBack, now, ControllerActor, st.reason)
	}
	return nil, nil
}

// restoreDeployed puts back what env recorded for d's applications before d.
func restoreDeployed(d *model.Deployment, env *model.Environment, now time.Time) {
	for _, a := range d.Applications {
		switch {
		case a.Previous != nil:
			env.DeployedVersions[a.Name] = *a.Previous
		case a.PreviousReleaseID != "": // recorded before Previous was kept
			env.DeployedVersions[a.Name] = model.DeployedVersion{ReleaseID: a.PreviousReleaseID}
		default:
			delete(env.DeployedVersions, a.Name)
		}
	}
	env.UpdateTime = now
}
