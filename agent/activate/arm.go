package activate

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/cutover-dev/cutover/agent/hook"
	"github.com/cutover-dev/cutover/agent/layout"
	"github.com/cutover-dev/cutover/agent/store"
	"github.com/cutover-dev/cutover/pkg/appspec"
	"github.com/cutover-dev/cutover/pkg/errkind"
	"github.com/cutover-dev/cutover/pkg/logging"
)

// Arm gets activation id ready to swap to releases without changing what
// runs: every release must be staged (the caller has verified its files
// against the manifest), the symlink `current.next` -> releases/<id> is
// made beside each app's `current`, and the armed activation is journaled.
// Arming again is fine; arming a deployment already committed reports
// nothing to do. Errors: FailedPrecondition for a release not staged or an
// activation that failed or was rolled back here; InvalidArgument for a
// bad release list.
func (a *Activator) Arm(ctx context.Context, id ActivationID, releases []Release) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, err := a.arm(id, releases)
	return err
}

// arm is Arm with a.mu held; it returns the journal entry.
func (a *Activator) arm(id ActivationID, releases []Release) (*store.Activation, error) {
	e, err := a.entry(id)
	if err != nil {
		return nil, err
	}
	if e != nil {
		switch e.State {
		case store.ActivationRunning, store.ActivationActive:
			return e, nil // committed already: arming changes nothing
		case store.ActivationFailed, store.ActivationRolledBack:
			_, err := a.again(e)
			return nil, err
		case store.ActivationArmed:
			if armedFor(e, releases) {
				return e, nil // armed already: commit renames the links it made (or swaps as Swap does)
			}
		}
	}
	e = &store.Activation{ActivationID: id, State: store.ActivationArmed}
	seen := map[string]bool{}
	for _, r := range releases {
		if err := layout.ValidRelease(r.Application, r.ID); err != nil {
			return nil, fmt.Errorf("%w; nothing was changed", err)
		}
		if seen[r.Application] {
			return nil, fmt.Errorf("application %q is listed twice; nothing was changed: %w", r.Application, errkind.InvalidArgument)
		}
		seen[r.Application] = true
	}
	for _, r := range releases {
		if _, err := a.staged(r.Application, r.ID); err != nil {
			return nil, fmt.Errorf("%w; nothing was changed", err)
		}
		prev, err := layout.Current(a.cfg.Root, r.Application)
		if err != nil {
			return nil, fmt.Errorf("%w; nothing was changed", err)
		}
		// Swapped, in an armed entry, says the commit may swap the app: the
		// commit then journals nothing before its swaps (Recover checks
		// `current`).
		e.Apps = append(e.Apps, store.AppActivation{Application: r.Application, Previous: prev, Target: r.ID, Swapped: prev != r.ID})
	}
	for _, aa := range e.Apps {
		if err := armLink(a.cfg.Root, aa.Application, aa.Target); err != nil {
			a.removeNext(e)
			return nil, fmt.Errorf("arm %q: %w; nothing running was changed", aa.Application, err)
		}
	}
	if err := a.journal(e); err != nil {
		a.removeNext(e)
		return nil, fmt.Errorf("%w; nothing was changed", err)
	}
	a.logFor(id).Info("armed", "apps", len(e.Apps))
	return e, nil
}

// Disarm forgets the armed activation id: it removes the
// `current.next` links arm made. Nothing running changes. A deployment not
// armed here (never, or already committed) is left as it is.
func (a *Activator) Disarm(ctx context.Context, id ActivationID) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	e, err := a.entry(id)
	if err != nil || e == nil || e.State != store.ActivationArmed {
		return err
	}
	a.removeNext(e)
	e.State = store.ActivationDisarmed
	if err := a.journal(e); err != nil {
		return err
	}
	a.logFor(id).Info("disarmed")
	return nil
}

// Commit swaps to the releases activation id armed (arming them first if it
// was not armed), restarts the apps, waits for their health checks, then
// runs the validate hooks. Any failure, a validate hook's included, swaps
// every app it swapped back. Committing again reports what the first
// commit did. The commit of a rollback by command (id has a
// RollbackAttempt) journals, in the same transaction as its own success,
// the deployment's own activation, which it undoes, as rolled back.
func (a *Activator) Commit(ctx context.Context, id ActivationID, releases []Release, validate []appspec.HookRef, opt CommitOptions) (Result, []hook.Result, error) {
	finish, unhold := a.holdSlot(id) // before the lock: an abort may come while it waits for it
	defer unhold()
	a.mu.Lock()
	defer a.mu.Unlock()
	log := a.logFor(id)
	e, err := a.entry(id)
	if err != nil {
		return Result{}, nil, err
	}
	if e != nil && e.State != store.ActivationArmed && e.State != store.ActivationDisarmed {
		// Committed already (the validate hooks ran or were interrupted):
		// the first commit's outcome, and its hooks from the hook journal.
		res, err := a.again(e)
		return res, a.journaledHooks(store.ValidateKey(id)), err
	}
	if e, err = a.arm(id, releases); err != nil {
		return Result{}, nil, err
	}
	apps := make([]*app, len(e.Apps))
	for i, aa := range e.Apps {
		if apps[i], err = a.staged(aa.Application, aa.Target); err != nil {
			a.removeNext(e)
			return Result{}, nil, fmt.Errorf("%w; nothing was changed", err)
		}
	}
	// The armed entry already says which apps the commit may swap, so
	// nothing is written to the store before the swaps: the agents' swaps
	// are not spread by their fsyncs. A crash from here on is found by
	// Recover (an armed entry whose `current` points at a target).
	e.State = store.ActivationRunning
	start := a.cfg.Clock()
	names := make([]string, len(e.Apps))
	for i, aa := range e.Apps {
		names[i] = aa.Application
	}
	failed := func(err error) (Result, error) {
		a.removeNext(e)
		res := a.fail(log, e, err)
		a.metrics.observe(names, false, a.cfg.Clock().Sub(start))
		return res, err
	}
	var beside []*handover // new processes serving beside the old ones (overlap.go)
	for i := range e.Apps {
		h, err := a.activateApp(ctx, log, e, i, apps[i])
		if err == nil && h != nil {
			beside = append(beside, h)
		}
		if err != nil {
			res, err := failed(errors.Join(err, abortAll(context.WithoutCancel(ctx), beside)))
			return res, nil, err
		}
	}
	if len(beside) > 0 {
		if opt.Hold {
			if err := a.waitFinish(ctx, finish, opt.Ready); err != nil {
				res, err := failed(errors.Join(err, abortAll(context.WithoutCancel(ctx), beside)))
				return res, nil, err
			}
		}
		e.SwapTime, e.Overlap = finishAll(beside)
		log.Info("old processes told to stop", "overlap", e.Overlap)
	}
	hooks, err := a.runHooks(ctx, store.ValidateKey(id), id, releasesOf(e), validate)
	if err != nil {
		res, err := failed(err)
		return res, hooks, err
	}
	e.State = store.ActivationActive
	if err := a.journal(e, a.undone(e)...); err != nil {
		res, err := failed(err)
		return res, hooks, err
	}
	a.removeNext(e) // left by the apps that ran their target already
	a.metrics.observe(names, true, a.cfg.Clock().Sub(start))
	log.Info("activation committed", "apps", len(e.Apps), "took", a.cfg.Clock().Sub(start))
	return Result{SwapTime: e.SwapTime, Overlap: e.Overlap}, hooks, nil
}

// RunHooks runs hooks of releases for the hooks command command (its id)
// of activation id, one after the other, and stops at the first that fails
// (its error says which, and how). Each runs in the directory `current` of
// its application points to, or in its release's directory when the
// application runs nothing yet. Each run is journaled (hookjournal.go):
// the same command again answers from the journal instead of running a
// hook again, and a hook that an agent crash interrupted is reported
// failed, never run again.
func (a *Activator) RunHooks(ctx context.Context, command string, id ActivationID, releases []Release, hooks []appspec.HookRef) ([]hook.Result, error) {
	if command == "" {
		return nil, fmt.Errorf("hooks command of %s without an id; no hook ran: %w", id, errkind.InvalidArgument)
	}
	unlock, err := a.hookLocks.lock(ctx, command)
	if err != nil {
		return nil, fmt.Errorf("hooks command %s: %w; no hook ran", command, err)
	}
	defer unlock()
	return a.runHooks(ctx, command, id, releases, hooks)
}

// runHooks runs refs, journaled under key (see RunHooks).
func (a *Activator) runHooks(ctx context.Context, key string, id ActivationID, releases []Release, refs []appspec.HookRef) ([]hook.Result, error) {
	prior, err := a.hookRuns(key)
	if err != nil {
		return nil, fmt.Errorf("read the hook journal of %s; no hook ran: %w", key, err)
	}
	var out []hook.Result
	for pos, ref := range refs {
		if r, ok := prior[pos]; ok {
			res, err := a.replay(r, ref)
			if err != nil {
				return out, err
			}
			out = append(out, res)
			if res.Failed() {
				return out, errors.New(res.Error)
			}
			continue
		}
		rel := ""
		for _, r := range releases {
			if r.Application == ref.Application {
				rel = r.ID
			}
		}
		if rel == "" {
			return out, fmt.Errorf("%s hook %d names application %q, which is not in the deployment: %w", ref.Kind, ref.Index, ref.Application, errkind.InvalidArgument)
		}
		ap, err := a.staged(ref.Application, rel)
		if err != nil {
			return out, fmt.Errorf("cannot run the %s hooks of %q: %w", ref.Kind, ref.Application, err)
		}
		h, ok := ap.appSpec.Resolve(ref)
		if !ok {
			return out, fmt.Errorf("release %s of %q has no %s hook %d: %w", rel, ref.Application, ref.Kind, ref.Index, errkind.InvalidArgument)
		}
		dir := ap.spec.Dir
		if cur, err := layout.Current(a.cfg.Root, ref.Application); err == nil && cur != "" {
			dir = layout.ReleaseDir(a.cfg.Root, ref.Application, cur)
		}
		res, err := a.runJournaled(ctx, key, id, pos, len(prior) == 0 && pos == 0, dir, rel, ref, h)
		if err != nil {
			return out, err
		}
		out = append(out, res)
		if res.Failed() {
			return out, errors.New(res.Error)
		}
	}
	return out, nil
}

// armedFor says whether e armed exactly releases.
func armedFor(e *store.Activation, releases []Release) bool {
	if len(e.Apps) != len(releases) {
		return false
	}
	for i, r := range releases {
		if e.Apps[i].Application != r.Application || e.Apps[i].Target != r.ID {
			return false
		}
	}
	return true
}

func releasesOf(e *store.Activation) []Release {
	out := make([]Release, len(e.Apps))
	for i, aa := range e.Apps {
		out[i] = Release{Application: aa.Application, ID: aa.Target}
	}
	return out
}

// removeNext removes the `current.next` links of e's apps (best effort).
func (a *Activator) removeNext(e *store.Activation) {
	for _, aa := range e.Apps {
		if err := removeLink(layout.NextPath(a.cfg.Root, aa.Application)); err != nil {
			a.cfg.Log.Warn("remove current.next", logging.KeyApplication, aa.Application, "error", err)
		}
	}
}

// armLink makes ROOT/<app>/current.next point at releases/<id> (replacing
// any earlier one) and fsyncs ROOT/<app>.
func armLink(root, app, id string) error {
	next := layout.NextPath(root, app)
	if err := removeLink(next); err != nil {
		return err
	}
	if err := os.Symlink(layout.CurrentTarget(id), next); err != nil {
		return err
	}
	return layout.SyncDir(layout.AppDir(root, app))
}

// commitLink renames ROOT/<app>/current.next over `current` when it points
// at releases/<id>, and otherwise swaps as Swap does; then fsyncs ROOT/<app>.
func commitLink(root, app, id string) error {
	next := layout.NextPath(root, app)
	if target, err := os.Readlink(next); err != nil || filepath.ToSlash(target) != layout.CurrentTarget(id) {
		return Swap(root, app, id)
	}
	if err := os.Rename(next, layout.CurrentPath(root, app)); err != nil {
		return fmt.Errorf("swap %q to %s: %w", app, id, err)
	}
	if err := layout.SyncDir(layout.AppDir(root, app)); err != nil {
		return fmt.Errorf("swap %q to %s: %w", app, id, err)
	}
	return nil
}

func removeLink(p string) error {
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
