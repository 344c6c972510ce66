// Package deployment owns deployments: the state machine and its rules
// (rules.go, pure functions) and the service that drives deployments through
// stage 1 (build, then stage on the agents) and stage 2 (activate, or roll
// back), recording every transition durably before it acts on it.
//
// The service's requests (Create, Prepare, Continue, Start, Abort) check and
// commit the new state and return at once; the work goes on in goroutines
// owned by Run, which also routes the agents' reports and, after a restart,
// resumes deployments that were PREPARING or ACTIVATING by resending their
// commands (they are idempotent).
package deployment

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cutover-dev/cutover/controlplane/build"
	"github.com/cutover-dev/cutover/controlplane/fleet"
	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/pkg/auditlog"
)

// Builder builds an application's source directory into a release.
// *build.Builder is the real one.
type Builder interface {
	Build(ctx context.Context, app, sourceDir string) (*build.Result, error)
}

// Config holds what the service needs.
type Config struct {
	Store      model.Store
	Fleet      *fleet.Fleet
	Builder    Builder
	Log        *slog.Logger
	Registerer prometheus.Registerer // nil: metrics are not registered
	Clock      func() time.Time
	// SQLTimeout bounds generating the SQL script in stage 1 and running it
	// in stage 2; 0 means DefaultSQLTimeout.
	SQLTimeout time.Duration
	// Packager runs the package step (package.go); nil: it fails, saying so.
	Packager Packager
	// PackageDir keeps the files the package step produces, per deployment.
	PackageDir string
	// Saved counts n release bytes that an agent of environment did not
	// fetch (transfer.Sender.Saved), once per agent and deployment; nil:
	// not counted.
	Saved func(environment string, n int64)
	// Epoch, if set, is the leader's epoch (several controllers on one
	// etcd): the SQL of stage 2 runs fenced by it, so that a database on
	// which a newer leader ran refuses a former leader (migrate.DB.Epoch);
	// nil: 0, not fenced.
	Epoch func() uint64
	// ShadowDir is where prepare makes the SQLite shadow databases it checks
	// SQL scripts on (shadow.go); "" means os.TempDir().
	ShadowDir string
	// ProgressFlush is the longest the agents' PROGRESS reports of stage and
	// arm are held in memory before they are stored and published
	// (progress.go); 0 means DefaultProgressFlush.
	ProgressFlush time.Duration
	// Copies, with several controllers on one etcd, says which other
	// controllers do not hold a release yet: PREPARED waits for them
	// (copies.go); nil: one controller.
	Copies Copies
	// Audit records, in the transaction of the change, each step the
	// controller takes by itself (expiry, scheduled stage 2, automatic
	// rollback, failures it decides); nil: not recorded.
	Audit Auditor
}

// Auditor appends an audit entry in the transaction of the change it
// records (*audit.Log).
type Auditor interface {
	AppendTx(tx model.Tx, e auditlog.Entry) (auditlog.Entry, error)
}

// ControllerActor is the actor of the transitions the controller makes on
// its own.
const ControllerActor = "controller"

// AppVersion names an application and the label of the version to deploy.
type AppVersion struct {
	Name         string
	VersionLabel string
}

// Service runs deployments.
type Service struct {
	store   model.Store
	fleet   *fleet.Fleet
	builder Builder
	log     *slog.Logger
	clock   func() time.Time
	metrics *metrics
	// sqlTimeout bounds each Generate and each run of a SQL script.
	sqlTimeout time.Duration
	packager   Packager
	packageDir string
	chunks     chunkSets
	audit      Auditor
	saved      func(environment string, n int64)
	shadowDir  string
	epoch      func() uint64
	copies     Copies

	// mu serialises every change of a deployment with the commands it sends,
	// so that agents see commands in the order the states were committed.
	mu      sync.Mutex
	runCtx  context.Context // set by Run; nil before
	wg      sync.WaitGroup  // goroutines started by Run
	cancels map[string]context.CancelFunc
	// dbRunning holds the deployments whose database step runs
	// (sqlphases.go); guarded by mu.
	dbRunning map[string]bool

	// progress holds the coalesced PROGRESS reports not yet stored, per
	// deployment (progress.go); guarded by mu.
	progress      map[string]pendingProgress
	progressFlush time.Duration
	// awaitingCopies holds the deployments whose agents all staged and
	// that wait for other controllers to hold their releases, with what
	// was last noted (copies.go); guarded by mu.
	awaitingCopies map[string]string
	// agentIndex holds, per deployment whose progress was stored alone,
	// the positions of its agents by name (progress.go); guarded by mu.
	agentIndex map[string]map[string]int

	watchers watchers
	wake     chan struct{} // pokes the timer task (timed.go)
}

// New returns a service. Nothing runs until Run.
func New(cfg Config) (*Service, error) {
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	s := &Service{store: cfg.Store, fleet: cfg.Fleet, builder: cfg.Builder, log: cfg.Log,
		clock: cfg.Clock, metrics: m, cancels: map[string]context.CancelFunc{}, dbRunning: map[string]bool{}, sqlTimeout: cfg.SQLTimeout,
		packager: cfg.Packager, packageDir: cfg.PackageDir, saved: cfg.Saved, audit: cfg.Audit, shadowDir: cfg.ShadowDir,
		wake: make(chan struct{}, 1), progress: map[string]pendingProgress{}, agentIndex: map[string]map[string]int{}, progressFlush: cfg.ProgressFlush, epoch: cfg.Epoch,
		copies: cfg.Copies, awaitingCopies: map[string]string{}}
	if s.epoch == nil {
		s.epoch = func() uint64 { return 0 }
	}
	if s.progressFlush <= 0 {
		s.progressFlush = DefaultProgressFlush
	}
	if s.sqlTimeout <= 0 {
		s.sqlTimeout = DefaultSQLTimeout
	}
	if s.clock == nil {
		s.clock = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.saved == nil {
		s.saved = func(string, int64) {}
	}
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(newStateCollector(s)); err != nil {
			return nil, err
		}
		if err := cfg.Registerer.Register(newDriftCollector(s)); err != nil {
			return nil, err
		}
	}
	s.watchers.subs = map[string]map[chan Change]struct{}{}
	return s, nil
}

// errUnchanged, returned by an update's fn, commits nothing and is no error.
var errUnchanged = errors.New("unchanged")

// update loads deployment id in a write transaction, applies the agents'
// progress held for it (progress.go), lets fn change it and stores it,
// durably, before it returns. If fn returns errUnchanged nothing is written
// (the progress stays held) and d is nil. A nil fn stores the held
// progress alone (errUnchanged if it changes nothing). Call with s.mu held.
func (s *Service) update(id string, fn func(tx model.Tx, d *model.Deployment) error) (*model.Deployment, error) {
	var d *model.Deployment
	var before map[string]time.Duration
	held := s.progress[id]
	err := s.store.Update(func(tx model.Tx) error {
		var err error
		if d, err = tx.Deployment(id); err != nil {
			return err
		}
		before = stageDurations(d)
		steps := len(d.History)
		progressed := held.apply(d)
		switch {
		case fn == nil && !progressed:
			return errUnchanged
		case fn != nil:
			if err := fn(tx, d); err != nil {
				return err
			}
		}
		if err := s.auditOwnSteps(tx, d, d.History[min(steps, len(d.History)):]); err != nil {
			return err
		}
		return tx.PutDeployment(d)
	})
	if errors.Is(err, errUnchanged) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	delete(s.progress, id) // stored with this change
	s.metrics.observeStages(before, d)
	return d, nil
}

// auditOwnSteps appends an audit entry for each step in steps that the
// controller took by itself; the caller's steps are audited by the guard.
func (s *Service) auditOwnSteps(tx model.Tx, d *model.Deployment, steps []model.Transition) error {
	if s.audit == nil {
		return nil
	}
	for _, t := range steps {
		if t.Actor != ControllerActor {
			continue
		}
		if _, err := s.audit.AppendTx(tx, auditlog.Entry{Subject: ControllerActor, Method: "controller/deployment " + string(t.State),
			Environment: d.Environment, Deployment: d.ID, Summary: t.Message, Code: "OK"}); err != nil {
			return err
		}
	}
	return nil
}

// send sends the commands of a committed step at once: a stage fan-out's
// swarm has every agent (fleet/swarm.go).
func (s *Service) send(out []fleet.Outgoing) { s.fleet.SendAll(out) }

func releases(d *model.Deployment) []fleet.ReleaseRef {
	var out []fleet.ReleaseRef
	for _, a := range d.Applications {
		if a.ReleaseID != "" {
			out = append(out, fleet.ReleaseRef{Application: a.Name, ReleaseID: a.ReleaseID})
		}
	}
	return out
}

// finished does what follows a final state: forget the commands still out,
// have the agents drop staged releases if stage 2 never ran, count it (in
// cutover_deployments_total once per final state it reaches: a deployment
// rolled back by command counts as deployed, then as rolled_back; the end
// of a rollback by command also in cutover_deployment_rollbacks_total),
// tell watchers. Call with s.mu held.
func (s *Service) finished(d *model.Deployment) {
	s.fleet.Forget(d.ID)
	delete(s.agentIndex, d.ID)
	// Front-ends that left commit unanswered: the fleet keeps these until
	// they answer, so they get them when they come back (outcome.go).
	s.send(outcomeCommands(d))
	if d.Step != "" && !d.Committed { // stage 2 ended before any commit: forget what arm prepared
		for _, a := range d.Agents {
			s.fleet.Send(a.Name, fleet.Command{Kind: fleet.Disarm, ID: commandID(d, fleet.Disarm, a.Name), DeploymentID: d.ID})
		}
	}
	if d.ActivateTime.IsZero() && len(releases(d)) > 0 {
		for _, a := range d.Agents {
			s.fleet.Send(a.Name, fleet.Command{Kind: fleet.Drop, ID: commandID(d, fleet.Drop, a.Name), DeploymentID: d.ID, Releases: releases(d)})
		}
	}
	if d.State == model.Deployed && d.Package != nil && d.Package.Pending {
		s.spawnPackage(d.ID)
	}
	if d.State == model.RolledBack && d.RollbackAttempt > 0 {
		// Rolled back by command: its run was counted as deployed when it
		// ended; it now counts as rolled back too.
		s.metrics.rollbacks.WithLabelValues(d.Environment, resultRolledBack).Inc()
	}
	s.metrics.finished.WithLabelValues(d.Environment, stateLabel(d.State)).Inc()
	s.log.Info("deployment ended", "deployment", d.ID, "environment", d.Environment, "state", d.State, "error", d.Error)
	s.watchers.publish(d)
}
