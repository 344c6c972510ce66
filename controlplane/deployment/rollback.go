package deployment

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cutover-dev/cutover/controlplane/fleet"
	"github.com/cutover-dev/cutover/controlplane/store"
	"github.com/cutover-dev/cutover/pkg/errkind"
	"github.com/cutover-dev/cutover/pkg/journalkey"
)

// This file holds the rollback command: a DEPLOYED deployment is undone on
// every agent, atomically, the same way as stage 2 swaps: every agent arms
// the releases that ran before (`current.next`, under the deployment's
// RollbackKey in its journal), and only once all have armed does every
// agent commit (swap back and restart). An arm failure disarms them all:
// nothing was swapped. It ends ROLLED_BACK; the environment's deployed
// versions go back with it. The database is not rolled back.

// DatabaseNotRolledBack is said wherever a rollback is reported.
const DatabaseNotRolledBack = "the database is NOT rolled back: the SQL that stage 2 ran stays applied"

// Rollback starts the rollback of a DEPLOYED deployment: every agent that
// activated it arms the releases that ran before; once all have, all
// commit. The deployment stays DEPLOYED until they all have swapped back,
// then becomes ROLLED_BACK; if one fails to arm, all are disarmed and it
// stays DEPLOYED with the error (nothing swapped), and the rollback can be
// retried.
// Errors: NotFound; FailedPrecondition when it is not DEPLOYED, is being
// rolled back, is not what the environment runs now, had nothing before
// it, or another deployment of the environment is ACTIVATING.
func (s *Service) Rollback(ctx context.Context, actor, id, reason string) (*store.Deployment, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []outgoing
	d, err := s.update(id, func(tx *store.Tx, d *store.Deployment) error {
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
		if missing := notConnected(d, s.fleet.Connected(d.Environment)); len(missing) > 0 {
			return fmt.Errorf("agents %s of deployment %s are not connected, and every agent that runs it must go back: reconnect them, then retry; nothing was changed: %w",
				strings.Join(missing, ", "), d.ID, errkind.FailedPrecondition)
		}
		msg := fmt.Sprintf("rollback requested by %s: every agent arms the releases that ran before, then all swap back together; %s", actor, DatabaseNotRolledBack)
		if reason != "" {
			msg += "; reason: " + reason
		}
		note(d, s.clock(), actor, msg)
		d.RollingBack, d.Error = true, ""
		d.RollbackKey = journalkey.Rollback(d.ID, len(d.History))
		for i := range d.Agents {
			d.Agents[i].Error, d.Agents[i].RollbackSwapTime = "", time.Time{}
		}
		out = s.enterRollbackStep(d, store.StepArm)
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.log.Warn("rolling back a deployed deployment", "deployment", d.ID, "environment", d.Environment, "actor", actor, "agents", len(out))
	s.send(out)
	s.watchers.publish(d)
	return d, nil
}

// Settled says whether d waits for nothing more: it is in a final state
// and no rollback of it runs.
func Settled(d *store.Deployment) bool { return Final(d.State) && !d.RollingBack }

// checkRollback refuses the rollback command unless d is DEPLOYED, is what
// env runs now for each of its applications, each had a release before it,
// and no other deployment of env is ACTIVATING.
func checkRollback(d *store.Deployment, env *store.Environment, others []*store.Deployment) error {
	if d.State != store.Deployed {
		return fmt.Errorf("deployment %s is %s: only a DEPLOYED deployment can be rolled back; nothing was changed: %w", d.ID, d.State, errkind.FailedPrecondition)
	}
	if d.RollingBack {
		return fmt.Errorf("deployment %s is being rolled back already: follow it with `cutoverctl deploy watch %s`: %w", d.ID, d.ID, errkind.FailedPrecondition)
	}
	for _, o := range others {
		if o.ID != d.ID && o.State == store.Activating {
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
func notConnected(d *store.Deployment, connected []fleet.AgentView) []string {
	var out []string
	for _, a := range d.Agents {
		if !slices.ContainsFunc(connected, func(v fleet.AgentView) bool { return v.Name == a.Name }) {
			out = append(out, a.Name)
		}
	}
	return out
}

// enterRollbackStep moves the rollback of d to step st (arm or commit) and
// returns its command to every agent.
func (s *Service) enterRollbackStep(d *store.Deployment, st store.Stage2Step) []outgoing {
	d.Step, d.StepTime = st, s.clock()
	out := make([]outgoing, 0, len(d.Agents))
	for i := range d.Agents {
		a := &d.Agents[i]
		a.StepError = ""
		kind, _ := stepKind(st)
		a.Command = d.RollbackKey + "." + string(kind) + "." + a.Name
		out = append(out, outgoing{agent: a.Name, cmd: rollbackCommand(d, a)})
	}
	return out
}

// rollbackCommand builds the command of the rollback's current step for
// agent a: the releases that ran before d, under d's RollbackKey; the arm
// only checks them (an agent never deletes a rollback target), the commit
// runs no validate hooks.
func rollbackCommand(d *store.Deployment, a *store.DeploymentAgent) fleet.Command {
	kind, _ := stepKind(d.Step)
	c := fleet.Command{Kind: kind, ID: a.Command, DeploymentID: d.RollbackKey}
	for _, app := range d.Applications {
		c.Releases = append(c.Releases, fleet.ReleaseRef{Application: app.Name, ReleaseID: app.PreviousReleaseID})
	}
	c.VerifyOnly = kind == fleet.Arm
	return c
}

// applyRollbackReport records the answer r to the rollback's arm or commit.
func applyRollbackReport(a *store.DeploymentAgent, kind fleet.CommandKind, r fleet.Report) {
	switch {
	case r.Outcome == fleet.CommandFailed:
		a.State = store.AgentFailed
	case r.Outcome == fleet.Done && kind == fleet.Arm:
		a.State = store.AgentArmed
	case r.Outcome == fleet.Done:
		a.State, a.SwappedBack, a.RollbackSwapTime = store.AgentRolledBack, true, r.SwapTime
	}
}

// nextRollbackByCommand decides what follows the agents' answers to the
// current step of the rollback command, once all have answered.
func nextRollbackByCommand(d *store.Deployment) step {
	failures := stepErrors(d)
	switch {
	case d.Step == store.StepArm && failures != "":
		return step{rollbackFailed: true, disarm: true, reason: fmt.Sprintf("rollback stopped at arm: %s; every agent was disarmed and nothing was swapped: every front-end still runs the releases of %s; fix those front-ends, then retry with `cutoverctl deploy rollback %s`", failures, d.ID, d.ID)}
	case d.Step == store.StepArm:
		return step{advance: true}
	case failures != "":
		return step{rollbackFailed: true, reason: fmt.Sprintf("rollback failed at commit: %s; those front-ends still run the releases of %s, the others went back; retry with `cutoverctl deploy rollback %s`", failures, d.ID, d.ID)}
	}
	return step{to: store.RolledBack, reason: fmt.Sprintf("rolled back by command: every agent armed, then all swapped back together (spread %s) and run the releases that ran before %s again; %s", spread(d, rollbackSwapTime), d.ID, DatabaseNotRolledBack)}
}

func rollbackSwapTime(a store.DeploymentAgent) time.Time { return a.RollbackSwapTime }

// endRollback applies st to a DEPLOYED deployment being rolled back and
// returns the commands to send.
func (s *Service) endRollback(tx *store.Tx, d *store.Deployment, st step, now time.Time) ([]outgoing, error) {
	switch {
	case st.advance:
		return s.enterRollbackStep(d, store.StepCommit), nil
	case st.rollbackFailed:
		d.RollingBack, d.Error = false, st.reason
		note(d, now, ControllerActor, st.reason)
		if !st.disarm {
			return nil, nil
		}
		var out []outgoing
		for i := range d.Agents {
			a := &d.Agents[i]
			a.State = store.AgentActive // it runs d's releases, as before
			out = append(out, outgoing{agent: a.Name, cmd: fleet.Command{Kind: fleet.Disarm, ID: d.RollbackKey + "." + string(fleet.Disarm) + "." + a.Name, DeploymentID: d.RollbackKey}})
		}
		return out, nil
	case st.to == store.RolledBack:
		env, err := tx.Environment(d.Environment)
		if err != nil {
			return nil, err
		}
		restoreDeployed(d, env, now)
		if err := tx.PutEnvironment(env); err != nil {
			return nil, err
		}
		d.RollbackSpread = spread(d, rollbackSwapTime)
		transition(d, store.RolledBack, now, ControllerActor, st.reason)
	}
	return nil, nil
}

// restoreDeployed puts back what env recorded for d's applications before d.
func restoreDeployed(d *store.Deployment, env *store.Environment, now time.Time) {
	for _, a := range d.Applications {
		switch {
		case a.Previous != nil:
			env.DeployedVersions[a.Name] = *a.Previous
		case a.PreviousReleaseID != "": // recorded before Previous was kept
			env.DeployedVersions[a.Name] = store.DeployedVersion{ReleaseID: a.PreviousReleaseID}
		default:
			delete(env.DeployedVersions, a.Name)
		}
	}
	env.UpdateTime = now
}
