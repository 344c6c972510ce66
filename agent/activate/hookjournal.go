package activate

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/cutover-dev/cutover/agent/hook"
	"github.com/cutover-dev/cutover/agent/store"
	"github.com/cutover-dev/cutover/pkg/appspec"
	"github.com/cutover-dev/cutover/pkg/errkind"
	"github.com/cutover-dev/cutover/pkg/logging"
)

// Hooks run once. A hook such as `scheduler suspend` or a cache purge must
// not run twice because a result was lost: the controller resends a
// command it has no answer to (after it restarted, or when the agent
// reconnects), with the same command id. So every hook run is journaled in
// the agent's store under its command's id (a hooks command) or under
// store.ValidateKey (the validate hooks of a commit), at its position in
// the command's list:
//
//   - "started", committed (fsynced) before the hook's process starts;
//   - "done" with its result (exit status, duration, output tail, error),
//     committed before the result is reported.
//
// The same command again answers each hook from the journal: a done hook
// with its result (a success, or the failure that ended the command); a
// hook journaled started and never done — the agent stopped while it ran,
// so it may have run in part or in full, and may even still run, since a
// hook has its own process group — is reported FAILED as interrupted, and
// not run again: the agent cannot know what it did, and running a
// non-idempotent hook twice is the harm this prevents. The operator checks
// the hook's effect on that front-end and retries with a new deployment.
// That answer is journaled done, so every later resend gives the same one.
// Hooks after the last journaled one run normally.

// HookRunRetention is how long a hook run stays in the journal. A command
// is resent only while its deployment's stage 2 (or rollback) runs, so a
// month is ample; older runs are deleted when a command journals its
// first hook.
const HookRunRetention = 30 * 24 * time.Hour

// hookRuns returns the runs journaled under key, by position.
func (a *Activator) hookRuns(key string) (map[int]*store.HookRun, error) {
	var runs []*store.HookRun
	err := a.cfg.Store.View(func(tx *store.Tx) error {
		var err error
		runs, err = tx.HookRuns(key)
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make(map[int]*store.HookRun, len(runs))
	for _, r := range runs {
		out[r.Position] = r
	}
	return out, nil
}

// putHookRun journals r (and, with prune, deletes the runs older than
// HookRunRetention in the same transaction).
func (a *Activator) putHookRun(r *store.HookRun, prune bool) error {
	now := a.cfg.Clock()
	r.UpdateTime = now
	return a.cfg.Store.Update(func(tx *store.Tx) error {
		if prune {
			if _, err := tx.DeleteHookRunsBefore(now.Add(-HookRunRetention)); err != nil {
				return err
			}
		}
		return tx.PutHookRun(r)
	})
}

// runJournaled runs hook h (named ref, at position pos of the command key)
// between its two journal entries.
func (a *Activator) runJournaled(ctx context.Context, key string, id ActivationID, pos int, prune bool, dir, release string, ref appspec.HookRef, h appspec.Hook) (hook.Result, error) {
	run := &store.HookRun{Key: key, Position: pos, ActivationID: id, Application: ref.Application,
		Kind: string(ref.Kind), Index: ref.Index, Release: release, Command: h.Command,
		State: store.HookStarted, StartTime: a.cfg.Clock()}
	if err := a.putHookRun(run, prune); err != nil {
		return hook.Result{}, fmt.Errorf("journal the start of %s hook %q of %s: %w; it did not run", ref.Kind, h.Command, ref.Application, err)
	}
	res := a.cfg.Hooks.Run(ctx, dir, release, ref, h)
	run.State, run.ExitCode, run.Duration, run.Output, run.Error = store.HookDone, res.ExitCode, res.Duration, res.Output, res.Error
	if err := a.putHookRun(run, false); err != nil {
		// Not reported as it ended: a resend will find it started, and
		// report it interrupted, which is what this says too.
		res.Error = fmt.Sprintf("%s hook %q of %s ran, but its result could not be journaled (%v); it is reported failed and will not run again: check its effect on this front-end",
			ref.Kind, h.Command, ref.Application, err)
		return res, nil
	}
	return res, nil
}

// replay answers the hook ref from its journaled run r: a done run with its
// result; a started one (interrupted) with a failure, journaled done.
func (a *Activator) replay(r *store.HookRun, ref appspec.HookRef) (hook.Result, error) {
	if r.Application != ref.Application || r.Kind != string(ref.Kind) || r.Index != ref.Index {
		return hook.Result{}, fmt.Errorf("command %s: hook %d was journaled as %s hook %d of %q, and is now %s hook %d of %q: the same command id with other hooks; no hook ran: %w",
			r.Key, r.Position, r.Kind, r.Index, r.Application, ref.Kind, ref.Index, ref.Application, errkind.FailedPrecondition)
	}
	log := a.logFor(r.ActivationID).With("command", r.Key, logging.KeyApplication, r.Application, "hook", r.Kind, "index", r.Index)
	if r.State == store.HookStarted {
		interrupt(r)
		if err := a.putHookRun(r, false); err != nil {
			return hook.Result{}, fmt.Errorf("journal %s hook %q of %s as interrupted: %w; it was not run again", r.Kind, r.Command, r.Application, err)
		}
		log.Warn("hook interrupted by an agent stop: reported failed, not run again", "started", r.StartTime)
	} else {
		log.Info("hook already ran for this command: answered from the journal, not run again", "failed", r.Error != "")
	}
	return resultOf(r), nil
}

// interrupt makes a started run done, failed as interrupted.
func interrupt(r *store.HookRun) {
	r.State, r.ExitCode = store.HookDone, -1
	r.Error = fmt.Sprintf("%s hook %q of %s was interrupted: the agent stopped while it ran (started %s), so it may have run in part or in full, and it is not run again; check its effect on this front-end, then retry with a new deployment",
		r.Kind, r.Command, r.Application, r.StartTime.Format(time.RFC3339))
}

// journaledHooks returns the results journaled under key (a run still
// started shows as interrupted), for a report that repeats an outcome.
func (a *Activator) journaledHooks(key string) []hook.Result {
	runs, err := a.hookRuns(key)
	if err != nil {
		a.cfg.Log.Warn("read the hook journal", "command", key, "error", err)
		return nil
	}
	out := make([]hook.Result, 0, len(runs))
	for pos := 0; pos < len(runs); pos++ {
		r, ok := runs[pos]
		if !ok {
			break
		}
		if r.State == store.HookStarted {
			interrupt(r)
		}
		out = append(out, resultOf(r))
	}
	return out
}

func resultOf(r *store.HookRun) hook.Result {
	return hook.Result{
		Ref:     appspec.HookRef{Application: r.Application, Kind: appspec.HookKind(r.Kind), Index: r.Index},
		Command: r.Command, ExitCode: r.ExitCode, Duration: r.Duration, Output: r.Output, Error: r.Error,
	}
}

// keyedLock lets one holder per key in at a time.
type keyedLock struct {
	mu   sync.Mutex
	held map[string]chan struct{}
}

// lock waits until key is free (or ctx ends), takes it, and returns its unlock.
func (k *keyedLock) lock(ctx context.Context, key string) (func(), error) {
	for {
		k.mu.Lock()
		ch, busy := k.held[key]
		if !busy {
			if k.held == nil {
				k.held = map[string]chan struct{}{}
			}
			ch = make(chan struct{})
			k.held[key] = ch
			k.mu.Unlock()
			return func() {
				k.mu.Lock()
				delete(k.held, key)
				k.mu.Unlock()
				close(ch)
			}, nil
		}
		k.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}
