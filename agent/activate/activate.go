// Package activate is stage 2 on the agent, in two steps so that agents
// swap together: Arm (arm.go) checks that the releases are staged, makes
// the symlink ROOT/<app>/current.next -> releases/<id> beside `current` and
// journals the armed activation, changing nothing that runs; Commit renames
// `current.next` over `current` per application, restarts the app, waits
// for its health check and runs the validate hooks. Any failure swaps every
// app it swapped back and restarts the previous releases. Disarm forgets an
// armed activation; RunHooks runs before_activate and after_activate hooks,
// journaled so that none runs twice (hookjournal.go).
// Rollback undoes a deployment's activation from the journal (stage 2's
// swap-back); a rollback by command is an arm and a commit of its own
// (an ActivationID with a RollbackAttempt), whose commit journals the
// activation it undoes as rolled back. Recover finishes, at agent start, an activation that a
// crash interrupted, by swapping back.
package activate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cutover-dev/cutover/agent/hook"
	"github.com/cutover-dev/cutover/agent/layout"
	"github.com/cutover-dev/cutover/agent/process"
	"github.com/cutover-dev/cutover/agent/store"
	"github.com/cutover-dev/cutover/pkg/appspec"
	"github.com/cutover-dev/cutover/pkg/errkind"
	"github.com/cutover-dev/cutover/pkg/logging"
	"github.com/cutover-dev/cutover/pkg/manifest"
)

// Processes runs the apps; *process.Supervisor is one.
type Processes interface {
	// Restart stops the app if it runs, then starts spec.
	Restart(ctx context.Context, spec process.Spec) error
	// Stop stops the app; not running is fine.
	Stop(ctx context.Context, app string) error
	// Info says what runs for app.
	Info(app string) (process.Info, bool)
	// Overlap starts spec's process beside the app's running one, on its
	// listening sockets (FailedPrecondition: not possible now; restart).
	Overlap(spec process.Spec) (*process.Handover, error)
}

// ActivationID names an activation: a deployment's own (its stage 2), or
// an attempt of a rollback by command of it, journaled apart.
type ActivationID = store.ActivationID

// Release names one application's release.
type Release struct {
	Application string
	ID          string
}

// Result is what an activation reports besides its error.
type Result struct {
	// SwapTime is when the first `current` was swapped; zero if none was.
	SwapTime time.Time
	// SwappedBack says the activation failed after a swap and went back.
	SwappedBack bool
	// Overlap is how long both versions served, the longest of the apps
	// that overlapped (run.listen); zero if none did.
	Overlap time.Duration
}

// Config configures an Activator.
type Config struct {
	// Store is the agent's store (staged releases, journal).
	Store *store.Store
	// Root is the agent's --root.
	Root string
	// Processes runs the apps.
	Processes Processes
	// Env holds the --env values; they expand ${VAR} in run.health.
	Env map[string]string
	// Log receives activation events.
	Log *slog.Logger
	// Registerer receives the activation metrics; nil: not registered.
	Registerer prometheus.Registerer
	// Clock returns the time; nil: time.Now.
	Clock func() time.Time
	// HTTPClient runs health checks; nil: a plain client.
	HTTPClient *http.Client
	// HealthInterval is the pause between health probes (default 100ms).
	HealthInterval time.Duration
	// Hooks runs hooks; nil: a hook.Runner with Env, Log and Clock.
	Hooks HookRunner
	// HoldTimeout bounds a held commit's wait for Finish (default
	// DefaultHoldTimeout).
	HoldTimeout time.Duration
}

// HookRunner runs one hook; *hook.Runner is the real one.
type HookRunner interface {
	Run(ctx context.Context, dir, release string, ref appspec.HookRef, h appspec.Hook) hook.Result
}

// Activator activates, rolls back and recovers. Activations and rollbacks
// run one at a time.
type Activator struct {
	cfg     Config
	metrics *metrics
	mu      sync.Mutex
	// hookLocks runs one hooks command of a given id at a time.
	hookLocks keyedLock

	heldMu sync.Mutex
	held   map[ActivationID]chan bool // activation → its commit's Finish (hold.go)
}

// New returns an Activator.
func New(cfg Config) (*Activator, error) {
	if cfg.Store == nil || cfg.Root == "" || cfg.Processes == nil {
		return nil, errors.New("activate: Store, Root and Processes are required")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{}
	}
	if cfg.HealthInterval <= 0 {
		cfg.HealthInterval = 100 * time.Millisecond
	}
	if cfg.HoldTimeout <= 0 {
		cfg.HoldTimeout = DefaultHoldTimeout
	}
	if cfg.Hooks == nil {
		cfg.Hooks = hook.New(hook.Config{Env: cfg.Env, Log: cfg.Log, Clock: cfg.Clock})
	}
	m, err := newMetrics(cfg.Registerer, cfg.Root)
	if err != nil {
		return nil, err
	}
	return &Activator{cfg: cfg, metrics: m}, nil
}

// app is what the activator knows of one staged release.
type app struct {
	spec    process.Spec
	appSpec appspec.Spec
	health  string
	// healthPath is what the private health socket is asked for (apps
	// with run.listen); "" when there is no health check.
	healthPath string
	wait       time.Duration
}

// staged returns how to run release id of application name; an error
// (errkind.FailedPrecondition) if it is not staged.
func (a *Activator) staged(name, id string) (*app, error) {
	var rec *store.Release
	err := a.cfg.Store.View(func(tx *store.Tx) error {
		var err error
		rec, err = tx.Release(name, id)
		return err
	})
	if err == nil && rec.State != store.ReleaseStaged {
		err = fmt.Errorf("release %s of %q is still being staged: %w", id, name, errkind.FailedPrecondition)
	}
	if errors.Is(err, errkind.NotFound) {
		err = fmt.Errorf("release %s of %q is not staged on this agent; stage it first: %w", id, name, errkind.FailedPrecondition)
	}
	if err != nil {
		return nil, err
	}
	dir := layout.ReleaseDir(a.cfg.Root, name, id)
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("release %s of %q is recorded as staged but %s is gone (%v); stage it again: %w", id, name, dir, err, errkind.FailedPrecondition)
	}
	m, err := manifest.Decode(rec.Manifest)
	if err != nil {
		return nil, fmt.Errorf("release %s of %q: %w", id, name, err)
	}
	ap := &app{
		spec: process.Spec{Application: name, Release: id, Dir: dir,
			Command: m.Spec.Run.Command, StopGrace: m.Spec.StopGrace(), StopSignal: m.Spec.StopSignal()},
		appSpec: m.Spec,
		health:  m.Spec.Expand(a.cfg.Env, m.Spec.Run.Health),
		wait:    m.Spec.HealthTimeout(),
	}
	if len(m.Spec.Run.Listen) > 0 {
		if ap.spec.Listen, err = m.Spec.Listeners(a.cfg.Env); err != nil {
			return nil, fmt.Errorf("release %s of %q: %w (set the variables it names with the agent's --env)", id, name, err)
		}
		if ap.healthPath, err = m.Spec.HealthPath(a.cfg.Env); err != nil {
			return nil, fmt.Errorf("release %s of %q: %w", id, name, err)
		}
	}
	return ap, nil
}

// journal writes e, and the entries also, in one transaction.
func (a *Activator) journal(e *store.Activation, also ...*store.Activation) error {
	now := a.cfg.Clock()
	err := a.cfg.Store.Update(func(tx *store.Tx) error {
		for _, x := range append([]*store.Activation{e}, also...) {
			x.UpdateTime = now
			if err := tx.PutActivation(x); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("journal activation of %s: %w", e.ActivationID, err)
	}
	return nil
}

// undone returns, when e is a rollback by command, the entry of the
// activation it undoes, moved to rolled back, for the caller to journal
// with e; nothing when there is none or it is not active.
func (a *Activator) undone(e *store.Activation) []*store.Activation {
	if e.RollbackAttempt == 0 {
		return nil
	}
	d, err := a.entry(ActivationID{Deployment: e.Deployment})
	if err != nil || d == nil || d.State != store.ActivationActive {
		if err != nil {
			a.cfg.Log.Warn("read the journal entry a rollback undoes", logging.KeyDeployment, e.Deployment, "error", err)
		}
		return nil
	}
	for i := range d.Apps {
		undone := slices.ContainsFunc(e.Apps, func(x store.AppActivation) bool { return x.Application == d.Apps[i].Application })
		if d.Apps[i].Swapped && !undone {
			return nil // an app of d still runs d's release: d is still in force
		}
		d.Apps[i].Swapped = false
	}
	d.State = store.ActivationRolledBack
	return []*store.Activation{d}
}

// logFor returns the log of activation id's events.
func (a *Activator) logFor(id ActivationID) *slog.Logger {
	log := a.cfg.Log.With(logging.KeyDeployment, id.Deployment)
	if id.RollbackAttempt > 0 {
		log = log.With("rollback_attempt", id.RollbackAttempt)
	}
	return log
}

func (a *Activator) entry(id ActivationID) (*store.Activation, error) {
	var e *store.Activation
	err := a.cfg.Store.View(func(tx *store.Tx) error {
		var err error
		e, err = tx.Activation(id)
		return err
	})
	if errors.Is(err, errkind.NotFound) {
		return nil, nil
	}
	return e, err
}

// again answers an activation that was already journaled.
func (a *Activator) again(e *store.Activation) (Result, error) {
	res := Result{SwapTime: e.SwapTime, SwappedBack: e.SwappedBack, Overlap: e.Overlap}
	switch e.State {
	case store.ActivationActive:
		return res, nil
	case store.ActivationRolledBack:
		return res, fmt.Errorf("deployment %s was activated, then rolled back on this agent; start a new deployment: %w", e.ActivationID, errkind.FailedPrecondition)
	default:
		return res, errkind.New(errkind.Aborted, e.Error)
	}
}

// activateApp swaps app i of e and restarts it, journaling before the swap;
// an app with run.listen is started beside its old process instead, and
// returned as a handover for the caller to finish (overlap.go).
func (a *Activator) activateApp(ctx context.Context, log *slog.Logger, e *store.Activation, i int, ap *app) (*handover, error) {
	aa := &e.Apps[i]
	log = log.With(logging.KeyApplication, aa.Application, logging.KeyRelease, aa.Target)
	if aa.Previous != aa.Target {
		if !aa.Swapped { // Commit journals every app's intent at once, before the first swap
			aa.Swapped = true
			if err := a.journal(e); err != nil {
				aa.Swapped = false
				return nil, err
			}
		}
		if err := commitLink(a.cfg.Root, aa.Application, aa.Target); err != nil {
			return nil, err
		}
		if e.SwapTime.IsZero() {
			e.SwapTime = a.cfg.Clock()
		}
		log.Info("current swapped", "previous", aa.Previous)
	} else if info, ok := a.cfg.Processes.Info(aa.Application); ok && info.Release == aa.Target {
		return nil, nil // already runs it: no restart
	}
	if ap.overlaps() {
		h, err := a.startBeside(ctx, log, ap)
		if !errors.Is(err, errkind.FailedPrecondition) {
			return h, err
		}
		log.Warn("cannot start the new release beside the old one; restarting it instead (a short outage)", "error", err)
	}
	return nil, a.restart(ctx, log, ap)
}

// restart stops the app, starts ap and waits for its health check.
func (a *Activator) restart(ctx context.Context, log *slog.Logger, ap *app) error {
	if err := a.cfg.Processes.Restart(ctx, ap.spec); err != nil {
		return fmt.Errorf("restart %q on release %s: %w", ap.spec.Application, ap.spec.Release, err)
	}
	client, url := a.cfg.HTTPClient, ap.health
	if ap.overlaps() { // through its private socket only
		info, _ := a.cfg.Processes.Info(ap.spec.Application)
		client, url = socketClient(info.HealthSocket), "http://"+healthHost+ap.healthPath
		if info.HealthSocket == "" || ap.healthPath == "" {
			url = ""
		}
	}
	if url == "" {
		return nil
	}
	if err := waitHealthy(ctx, client, url, ap.wait, a.cfg.HealthInterval); err != nil {
		return fmt.Errorf("%q on release %s: %w", ap.spec.Application, ap.spec.Release, err)
	}
	log.Info("app healthy", "health", ap.health)
	return nil
}

// fail swaps back every app e swapped, in reverse order, restarts their
// previous releases, and journals the failure.
func (a *Activator) fail(log *slog.Logger, e *store.Activation, cause error) Result {
	ctx := context.WithoutCancel(context.Background())
	var problems []error
	for i := len(e.Apps) - 1; i >= 0; i-- {
		aa := &e.Apps[i]
		if !aa.Swapped {
			continue
		}
		if cur, err := layout.Current(a.cfg.Root, aa.Application); err == nil && cur != aa.Target {
			aa.Swapped = false // journaled as about to swap, but the failure came first
			continue
		}
		if err := a.goBack(ctx, aa); err != nil {
			problems = append(problems, err)
		}
		e.SwappedBack = true
	}
	e.State = store.ActivationFailed
	e.Error = cause.Error()
	if e.SwappedBack {
		e.Error += "; every app that was swapped went back to its previous release"
	} else {
		e.Error += "; nothing was swapped"
	}
	if len(problems) > 0 {
		e.Error += fmt.Sprintf(" (with problems: %v)", errors.Join(problems...))
	}
	if err := a.journal(e); err != nil {
		log.Error("journal the failed activation", "error", err)
	}
	log.Warn("activation failed", "error", e.Error, "swapped_back", e.SwappedBack)
	return Result{SwapTime: e.SwapTime, SwappedBack: e.SwappedBack}
}

// goBack points aa's app at its previous release (or removes `current` if it
// had none) and restarts (or stops) it, then waits for its health check. It
// does nothing if `current` no longer points at aa's target (another
// activation moved it).
func (a *Activator) goBack(ctx context.Context, aa *store.AppActivation) error {
	log := a.cfg.Log.With(logging.KeyApplication, aa.Application, logging.KeyRelease, aa.Previous)
	cur, err := layout.Current(a.cfg.Root, aa.Application)
	if err != nil {
		return err
	}
	if cur != aa.Target {
		log.Warn("not swapping back: current points elsewhere now", "current", cur, "target", aa.Target)
		return nil
	}
	var prev *app
	if aa.Previous != "" {
		if prev, err = a.staged(aa.Application, aa.Previous); err != nil {
			return fmt.Errorf("cannot go back to release %s of %q: %w", aa.Previous, aa.Application, err)
		}
	}
	if err := pointTo(a.cfg.Root, aa.Application, aa.Previous); err != nil {
		return fmt.Errorf("swap %q back: %w", aa.Application, err)
	}
	aa.Swapped = false
	if prev == nil {
		log.Info("current removed: the app had no previous release")
		return a.cfg.Processes.Stop(ctx, aa.Application)
	}
	log.Info("current swapped back")
	if info, ok := a.cfg.Processes.Info(aa.Application); ok && info.Release == aa.Previous {
		return nil // its new process was stopped before the old one was: the old one never stopped serving
	}
	// Swapped back means serving again: the report waits for the health check.
	if prev.overlaps() {
		h, err := a.startBeside(ctx, log, prev)
		if err == nil {
			h.h.Finish()
			return nil
		}
		if !errors.Is(err, errkind.FailedPrecondition) {
			return fmt.Errorf("%q back on release %s: %w", aa.Application, aa.Previous, err)
		}
		log.Warn("cannot start the previous release beside the new one; restarting it instead (a short outage)", "error", err)
	}
	if err := a.restart(ctx, log, prev); err != nil {
		return fmt.Errorf("%q back on release %s: %w", aa.Application, aa.Previous, err)
	}
	return nil
}
