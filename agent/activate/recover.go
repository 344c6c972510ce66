package activate

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/cutover-dev/cutover/agent/layout"
	"github.com/cutover-dev/cutover/agent/store"
	"github.com/cutover-dev/cutover/pkg/logging"
)

// This file holds what goes back or starts again outside an activation:
// a rollback by command, the recovery at start, and starting the apps.

// Rollback undoes deployment's activation for apps (all of its apps when
// empty): each swapped app goes back to its previous release. A deployment
// never activated here, or already undone, is fine.
func (a *Activator) Rollback(ctx context.Context, deployment string, apps []string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	e, err := a.entry(ActivationID{Deployment: deployment})
	if err != nil || e == nil {
		return err
	}
	log := a.cfg.Log.With(logging.KeyDeployment, deployment)
	var problems []error
	for i := len(e.Apps) - 1; i >= 0; i-- {
		aa := &e.Apps[i]
		if !aa.Swapped || (len(apps) > 0 && !slices.Contains(apps, aa.Application)) {
			continue
		}
		if err := a.goBack(ctx, aa); err != nil {
			problems = append(problems, err)
		}
	}
	still := slices.ContainsFunc(e.Apps, func(aa store.AppActivation) bool { return aa.Swapped })
	if !still && e.State == store.ActivationActive {
		e.State = store.ActivationRolledBack
	}
	if err := a.journal(e); err != nil {
		return err
	}
	if err := errors.Join(problems...); err != nil {
		return fmt.Errorf("roll back %q: %w", deployment, err)
	}
	log.Info("rolled back", "apps", len(e.Apps))
	return nil
}

// Recover finishes the activations a crash interrupted: each app swapped
// to its target goes back to its previous release (on disk only; StartAll
// starts the apps), and the activation is journaled as failed. An
// interrupted rollback by command is one of them: its apps go back to the
// releases of the deployment it was undoing, whose entry stays active. An
// active entry whose committed rollback left it active (journaled by an
// older agent) is journaled rolled back.
func (a *Activator) Recover() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	var entries []*store.Activation
	err := a.cfg.Store.View(func(tx *store.Tx) error {
		var err error
		entries, err = tx.Activations()
		return err
	})
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.State == store.ActivationActive {
			// A rollback by command that committed journaled what it undid in
			// the same transaction; an agent before that left it active.
			if also := a.undone(e); len(also) > 0 {
				if err := a.journal(also[0]); err != nil {
					return err
				}
			}
			continue
		}
		if e.State == store.ActivationArmed && !commitStarted(a.cfg.Root, e) {
			continue // still armed: the controller may commit or disarm it
		}
		if e.State != store.ActivationRunning && e.State != store.ActivationArmed {
			continue
		}
		for i := len(e.Apps) - 1; i >= 0; i-- {
			aa := &e.Apps[i]
			if !aa.Swapped {
				continue
			}
			if cur, err := layout.Current(a.cfg.Root, aa.Application); err == nil && cur == aa.Target {
				if err := pointTo(a.cfg.Root, aa.Application, aa.Previous); err != nil {
					return fmt.Errorf("recover activation of %s: %w", e.ActivationID, err)
				}
				e.SwappedBack = true
			}
			aa.Swapped = false
		}
		e.State = store.ActivationFailed
		e.Error = "the agent stopped during the activation; every app that was swapped went back to its previous release"
		if err := a.journal(e); err != nil {
			return err
		}
		a.logFor(e.ActivationID).Warn("interrupted activation swapped back")
	}
	return nil
}

// commitStarted says whether an armed activation's commit swapped an app
// (the commit journals nothing before its first swap: arm did).
func commitStarted(root string, e *store.Activation) bool {
	for _, aa := range e.Apps {
		if cur, err := layout.Current(root, aa.Application); err == nil && aa.Swapped && cur == aa.Target {
			return true
		}
	}
	return false
}

// StartAll starts every app whose `current` exists, on the release it
// points to, unless it runs that release already in a process adopted from
// the previous agent.
func (a *Activator) StartAll(ctx context.Context) error {
	apps, err := layout.Apps(a.cfg.Root)
	if err != nil {
		return err
	}
	for _, name := range apps {
		id, err := layout.Current(a.cfg.Root, name)
		if err != nil {
			a.cfg.Log.Error("app not started", logging.KeyApplication, name, "error", err)
			continue
		}
		info, running := a.cfg.Processes.Info(name)
		if id == "" {
			if running && info.Adopted {
				// No `current`: the app was stopped on purpose (app stop,
				// a rollback to nothing) by an agent that died before its
				// process was gone. A front-end runs what `current` says.
				a.cfg.Log.Warn("stopping an adopted app that has no current release", logging.KeyApplication, name, "pid", info.PID)
				if err := a.cfg.Processes.Stop(ctx, name); err != nil {
					a.cfg.Log.Error("stop the adopted app", logging.KeyApplication, name, "error", err)
				}
			}
			continue
		}
		if running && info.Adopted && info.Release == id {
			continue
		}
		ap, err := a.staged(name, id)
		if err != nil {
			a.cfg.Log.Error("app not started", logging.KeyApplication, name, logging.KeyRelease, id, "error", err)
			continue
		}
		if err := a.cfg.Processes.Restart(ctx, ap.spec); err != nil {
			a.cfg.Log.Error("app not started", logging.KeyApplication, name, logging.KeyRelease, id, "error", err)
		}
	}
	return nil
}

// Needed reports whether a release must be kept for a rollback: it is the
// previous or target release of an app in an activation that is still in
// force (active or running, and `current` still points at its target), or
// of an armed activation.
func (a *Activator) Needed(name, id string) bool {
	cur, _ := layout.Current(a.cfg.Root, name)
	var needed bool
	_ = a.cfg.Store.View(func(tx *store.Tx) error {
		es, err := tx.Activations()
		for _, e := range es {
			if e.State != store.ActivationActive && e.State != store.ActivationRunning && e.State != store.ActivationArmed {
				continue
			}
			for _, aa := range e.Apps {
				inForce := aa.Target == cur || (e.State == store.ActivationArmed && aa.Previous == cur)
				if aa.Application == name && inForce && (aa.Previous == id || aa.Target == id) {
					needed = true
				}
			}
		}
		return err
	})
	return needed
}
