package deployment

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/cutover-dev/cutover/controlplane/fleet"
	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/pkg/appspec"
	"github.com/cutover-dev/cutover/pkg/errkind"
)

// This file holds reconcile (cutoverctl env reconcile): the drifted
// front-ends of an environment (drift.go) are brought back to the
// releases it records, by a reconcile deployment: a deployment of those
// recorded releases (of the applications that drift) that skips stage 1
// and runs stage 2 only, on the drifted front-ends that are connected,
// exactly as continue does: arm (which stages what a front-end lacks,
// fetched like any release of the environment), the before_activate hooks
// of those releases, commit (swap, restart, health, validate hooks), the
// after_activate hooks; a failure after a swap rolls the swapped ones back
// to what they ran. It differs from a deployment in two ways, each
// decided by reconcileEnd: a DEPLOYED reconcile leaves the environment's
// records as they are (they already say what runs), and a failure before
// any swap ends it FAILED, not PREPARED (there is nothing to continue:
// reconcile again).

// ReconcileResult is what Reconcile started.
type ReconcileResult struct {
	// Deployment is the reconcile deployment (ACTIVATING); nil when no
	// front-end drifted.
	Deployment *model.Deployment
	// Agents are the drifted front-ends it brings back, sorted.
	Agents []string
	// NotConnected are the drifted front-ends left out, sorted.
	NotConnected []string
}

// Reconcile brings the drifted front-ends of env that are connected back
// to the releases env records, with a reconcile deployment (ACTIVATING)
// that it returns. With no drifted front-end it does nothing and returns
// no deployment. Errors: InvalidArgument for a bad name; NotFound for an
// unknown environment; FailedPrecondition, nothing changed, while a
// deployment of env is busy (PREPARING, PREPARED, ACTIVATING) or rolling
// back, when no drifted front-end is connected, or when the controller no
// longer holds a recorded release.
func (s *Service) Reconcile(ctx context.Context, actor, env, reason string) (*ReconcileResult, error) {
	if err := appspec.ValidName(env); err != nil {
		return nil, fmt.Errorf("environment: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	res := &ReconcileResult{}
	var out []fleet.Outgoing
	views, err := s.fleet.Agents(env)
	if err != nil {
		return nil, err
	}
	err = s.store.Update(func(tx model.Tx) error {
		e, err := tx.Environment(env)
		if err != nil {
			return err
		}
		deps, err := tx.Deployments(env)
		if err != nil {
			return err
		}
		if err := checkReconcile(env, deps); err != nil {
			return err
		}
		var targets []fleet.AgentView
		var why []string
		apps := map[string]bool{}
		for _, v := range views {
			reasons := Drift(e, v.Applications)
			switch {
			case len(reasons) == 0:
				continue
			case !v.Connected:
				res.NotConnected = append(res.NotConnected, v.Name)
				continue
			}
			targets = append(targets, v)
			res.Agents = append(res.Agents, v.Name)
			why = append(why, fmt.Sprintf("%s (%s)", v.Name, strings.Join(reasons, "; ")))
			for _, r := range reasons {
				app, _, _ := strings.Cut(r, ":")
				apps[app] = true
			}
		}
		switch {
		case len(targets) == 0 && len(res.NotConnected) == 0:
			return errUnchanged
		case len(targets) == 0:
			return fmt.Errorf("the drifted front-ends of environment %s (%s) are not connected: start their agents, then reconcile again; nothing was changed: %w",
				env, strings.Join(res.NotConnected, ", "), errkind.FailedPrecondition)
		}
		d, err := newReconcile(tx, e, slices.Sorted(maps.Keys(apps)), s.clock())
		if err != nil {
			return err
		}
		msg := "reconcile requested by " + actor + ": bring " + strings.Join(why, ", ") + " back to the recorded releases"
		if len(res.NotConnected) > 0 {
			msg += fmt.Sprintf(" (left out, drifted but not connected: %s)", strings.Join(res.NotConnected, ", "))
		}
		if reason != "" {
			msg += "; reason: " + reason
		}
		note(d, s.clock(), actor, msg)
		if out, err = s.beginActivation(tx, d, targets, actor); err != nil {
			return err
		}
		res.Deployment = d
		return tx.PutDeployment(d)
	})
	if errors.Is(err, errUnchanged) {
		return res, nil
	}
	if err != nil {
		return nil, err
	}
	d := res.Deployment
	s.log.Warn("reconciling drifted front-ends", "deployment", d.ID, "environment", env, "actor", actor, "agents", res.Agents)
	s.send(out)
	s.watchers.publish(d)
	return res, nil
}

// checkReconcile refuses a reconcile of env while one of its deployments
// (deps) is busy or rolling back: the front-ends are between two records.
func checkReconcile(env string, deps []*model.Deployment) error {
	for _, d := range deps {
		switch {
		case Busy(d.State):
			return fmt.Errorf("deployment %s of environment %s is %s: reconcile once it has ended (or abort it); nothing was changed: %w",
				d.ID, env, d.State, errkind.FailedPrecondition)
		case d.State == model.Deployed && d.RollingBack:
			return fmt.Errorf("deployment %s of environment %s is being rolled back: reconcile once the rollback has ended; nothing was changed: %w",
				d.ID, env, errkind.FailedPrecondition)
		}
	}
	return nil
}

// newReconcile returns a new reconcile deployment of the releases env
// records for apps, PREPARED (stage 1 has nothing to do: arm stages what
// a front-end lacks). FailedPrecondition if the controller no longer
// holds one of those releases.
func newReconcile(tx model.Tx, env *model.Environment, apps []string, now time.Time) (*model.Deployment, error) {
	id, err := tx.NextDeploymentID()
	if err != nil {
		return nil, err
	}
	d := &model.Deployment{ID: id, Environment: env.Name, State: model.Prepared, SingleStage: true, Reconcile: true,
		CreateTime: now, PrepareTime: now, PreparedTime: now}
	for _, app := range apps {
		v := env.DeployedVersions[app]
		if _, err := tx.Manifest(v.ReleaseID); errors.Is(err, errkind.NotFound) {
			return nil, fmt.Errorf("the controller no longer holds release %s of %s, which environment %s records: deploy %s again instead; nothing was changed: %w",
				short(v.ReleaseID), app, env.Name, app, errkind.FailedPrecondition)
		} else if err != nil {
			return nil, err
		}
		d.Applications = append(d.Applications, model.DeploymentApplication{Name: app, VersionLabel: v.VersionLabel, ReleaseID: v.ReleaseID})
	}
	return d, nil
}

// reconcileEnd is the end of stage 2 that d takes instead of to, with its
// reason: a reconcile deployment that would go back to PREPARED (a
// failure before any swap) is FAILED; every front-end still runs what it
// ran.
func reconcileEnd(d *model.Deployment, to model.DeploymentState, reason string) (model.DeploymentState, string) {
	if !d.Reconcile || to != model.Prepared {
		return to, reason
	}
	return model.Failed, strings.TrimSuffix(reason, againHint) + "; the reconcile ended; fix the cause, then run `cutoverctl env reconcile " + d.Environment + "` again"
}
