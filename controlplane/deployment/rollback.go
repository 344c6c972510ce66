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
)

// This file holds the rollback command: a DEPLOYED deployment is undone on
// every agent (each swaps `current` back to the release that ran before,
// from its activation journal) and ends ROLLED_BACK; the environment's
// deployed versions go back with it. The database is not rolled back.

// DatabaseNotRolledBack is said wherever a rollback is reported.
const DatabaseNotRolledBack = "the database is NOT rolled back: the SQL that stage 2 ran stays applied"

// Rollback starts the rollback of a DEPLOYED deployment: every agent that
// activated it is told to go back to its previous releases. The deployment
// stays DEPLOYED until they all have, then becomes ROLLED_BACK; if one
// fails it stays DEPLOYED with the error, and the rollback can be retried.
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
		msg := fmt.Sprintf("rollback requested by %s: every agent goes back to the releases that ran before; %s", actor, DatabaseNotRolledBack)
		if reason != "" {
			msg += "; reason: " + reason
		}
		note(d, s.clock(), actor, msg)
		d.RollingBack, d.Error = true, ""
		for i := range d.Agents {
			a := &d.Agents[i]
			a.Error, a.Command = "", commandID(d, fleet.Rollback, a.Name)
			out = append(out, outgoing{agent: a.Name, cmd: fleet.Command{Kind: fleet.Rollback, ID: a.Command, DeploymentID: d.ID}})
		}
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

// nextRollbackByCommand decides what follows the agents' answers to the
// rollback command, once all have answered.
func nextRollbackByCommand(d *store.Deployment, failures string) step {
	if failures != "" {
		return step{rollbackFailed: true, reason: fmt.Sprintf("rollback failed: %s; those front-ends may still run the releases of %s, the others went back; retry with `cutoverctl deploy rollback %s`", failures, d.ID, d.ID)}
	}
	return step{to: store.RolledBack, reason: fmt.Sprintf("rolled back by command: every agent runs the releases that ran before %s again; %s", d.ID, DatabaseNotRolledBack)}
}

// endRollback applies st to a DEPLOYED deployment being rolled back.
func (s *Service) endRollback(tx *store.Tx, d *store.Deployment, st step, now time.Time) error {
	switch {
	case st.rollbackFailed:
		d.RollingBack, d.Error = false, st.reason
		note(d, now, ControllerActor, st.reason)
	case st.to == store.RolledBack:
		env, err := tx.Environment(d.Environment)
		if err != nil {
			return err
		}
		restoreDeployed(d, env, now)
		if err := tx.PutEnvironment(env); err != nil {
			return err
		}
		transition(d, store.RolledBack, now, ControllerActor, st.reason)
	}
	return nil
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
