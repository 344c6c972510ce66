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
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cutover-dev/cutover/controlplane/build"
	"github.com/cutover-dev/cutover/controlplane/fleet"
	"github.com/cutover-dev/cutover/controlplane/store"
	"github.com/cutover-dev/cutover/pkg/appspec"
	"github.com/cutover-dev/cutover/pkg/auditlog"
	"github.com/cutover-dev/cutover/pkg/errkind"
)

// Builder builds an application's source directory into a release.
// *build.Builder is the real one.
type Builder interface {
	Build(ctx context.Context, app, sourceDir string) (*build.Result, error)
}

// Config holds what the service needs.
type Config struct {
	Store      *store.Store
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
	// ShadowDir is where prepare makes the SQLite shadow databases it checks
	// SQL scripts on (shadow.go); "" means os.TempDir().
	ShadowDir string
	// Audit records, in the transaction of the change, each step the
	// controller takes by itself (expiry, scheduled stage 2, automatic
	// rollback, failures it decides); nil: not recorded.
	Audit Auditor
}

// Auditor appends an audit entry in the transaction of the change it
// records (*audit.Log).
type Auditor interface {
	AppendTx(tx *store.Tx, e auditlog.Entry) (auditlog.Entry, error)
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
	store   *store.Store
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

	// mu serialises every change of a deployment with the commands it sends,
	// so that agents see commands in the order the states were committed.
	mu      sync.Mutex
	runCtx  context.Context // set by Run; nil before
	wg      sync.WaitGroup  // goroutines started by Run
	cancels map[string]context.CancelFunc

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
		clock: cfg.Clock, metrics: m, cancels: map[string]context.CancelFunc{}, sqlTimeout: cfg.SQLTimeout,
		packager: cfg.Packager, packageDir: cfg.PackageDir, saved: cfg.Saved, audit: cfg.Audit, shadowDir: cfg.ShadowDir,
		wake: make(chan struct{}, 1)}
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
	s.watchers.subs = map[string]map[chan *store.Deployment]struct{}{}
	return s, nil
}

// Create plans a deployment of apps to env (PLANNED). Errors:
// InvalidArgument for a bad name, no application or one named twice;
// NotFound for an unknown environment or application.
func (s *Service) Create(ctx context.Context, actor, env string, apps []AppVersion) (*store.Deployment, error) {
	if err := appspec.ValidName(env); err != nil {
		return nil, fmt.Errorf("environment: %w", err)
	}
	if len(apps) == 0 {
		return nil, fmt.Errorf("a deployment needs at least one application (name=version): %w", errkind.InvalidArgument)
	}
	seen := map[string]bool{}
	for _, a := range apps {
		if err := appspec.ValidName(a.Name); err != nil {
			return nil, fmt.Errorf("application: %w", err)
		}
		if seen[a.Name] {
			return nil, fmt.Errorf("application %s is named twice; name each application once: %w", a.Name, errkind.InvalidArgument)
		}
		seen[a.Name] = true
	}
	var d *store.Deployment
	err := s.store.Update(func(tx *store.Tx) error {
		if _, err := tx.Environment(env); err != nil {
			return err
		}
		for _, a := range apps {
			if _, err := tx.Application(a.Name); err != nil {
				return err
			}
		}
		id, err := tx.NextDeploymentID()
		if err != nil {
			return err
		}
		now := s.clock()
		d = &store.Deployment{ID: id, Environment: env, State: store.Planned, CreateTime: now,
			History: []store.Transition{{State: store.Planned, Time: now, Actor: actor, Message: "created"}}}
		for _, a := range apps {
			d.Applications = append(d.Applications, store.DeploymentApplication{Name: a.Name, VersionLabel: a.VersionLabel})
		}
		return tx.PutDeployment(d)
	})
	if err != nil {
		return nil, err
	}
	s.log.Info("deployment planned", "deployment", d.ID, "environment", env, "actor", actor)
	return d, nil
}

// Get returns a deployment. NotFound if unknown.
func (s *Service) Get(ctx context.Context, id string) (*store.Deployment, error) {
	var d *store.Deployment
	err := s.store.View(func(tx *store.Tx) error {
		var err error
		d, err = tx.Deployment(id)
		return err
	})
	return d, err
}

// List returns the deployments of env (all if empty), newest first.
// NotFound for an unknown environment.
func (s *Service) List(ctx context.Context, env string) ([]*store.Deployment, error) {
	var ds []*store.Deployment
	err := s.store.View(func(tx *store.Tx) error {
		if env != "" {
			if _, err := tx.Environment(env); err != nil {
				return err
			}
		}
		var err error
		ds, err = tx.Deployments(env)
		return err
	})
	return ds, err
}

// Prepare starts stage 1 of a PLANNED deployment of a two-stage environment.
// Errors: NotFound; FailedPrecondition if the environment is single-stage,
// the deployment is not PLANNED, another deployment of the environment is
// busy or no agent of the environment is connected.
func (s *Service) Prepare(ctx context.Context, actor, id string) (*store.Deployment, error) {
	return s.begin(actor, id, false, ContinueOptions{})
}

// Start runs both stages back to back. Same errors as Prepare, except that
// the environment may be single-stage; also InvalidArgument for
// inconsistent options (a force without reason, at_window) and
// FailedPrecondition when the deployment needs an approval or no
// deployment window is open (unless opt.Force).
func (s *Service) Start(ctx context.Context, actor, id string, opt ContinueOptions) (*store.Deployment, error) {
	if opt.AtWindow {
		return nil, fmt.Errorf("at_window applies to continue only: start runs stage 1 first, which may take long; prepare, then continue at the window; nothing was changed: %w", errkind.InvalidArgument)
	}
	if err := opt.validate(); err != nil {
		return nil, err
	}
	return s.begin(actor, id, true, opt)
}

func (s *Service) begin(actor, id string, single bool, opt ContinueOptions) (*store.Deployment, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := s.update(id, func(tx *store.Tx, d *store.Deployment) error {
		env, err := tx.Environment(d.Environment)
		if err != nil {
			return err
		}
		others, err := tx.Deployments(d.Environment)
		if err != nil {
			return err
		}
		if single {
			err = checkStartable(d, others, "start")
		} else {
			err = checkPrepare(d, env, others)
		}
		if err != nil {
			return err
		}
		if single {
			if err := checkApproval(d, env); err != nil {
				return err
			}
			forced, err := checkWindow(d, env, s.clock(), opt, "start")
			if err != nil {
				return err
			}
			if forced != "" {
				note(d, s.clock(), actor, forced)
			}
			d.StartForced = opt.Force
		}
		connected := s.fleet.Connected(d.Environment)
		if len(connected) == 0 {
			return fmt.Errorf("no agent of environment %s is connected: start cutover-agent --environment %s on its front-ends, then retry; deployment %s is unchanged: %w",
				d.Environment, d.Environment, d.ID, errkind.FailedPrecondition)
		}
		for _, a := range connected {
			d.Agents = append(d.Agents, store.DeploymentAgent{Name: a.Name, State: store.AgentPending})
		}
		d.SingleStage = single
		msg := fmt.Sprintf("stage 1: build, then stage on %d agents", len(connected))
		if single {
			msg = fmt.Sprintf("single stage: prepare on %d agents, then continue at once", len(connected))
		}
		known, err := tx.Agents()
		if err != nil {
			return err
		}
		if left := leftOut(known, connected, d.Environment); len(left) > 0 {
			msg += fmt.Sprintf(" (left out, not connected: %s)", strings.Join(left, ", "))
		}
		transition(d, store.Preparing, s.clock(), actor, msg)
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.log.Info("deployment preparing", "deployment", d.ID, "environment", d.Environment, "actor", actor, "agents", len(d.Agents))
	s.spawnBuild(d.ID)
	s.watchers.publish(d)
	return d, nil
}

// Continue starts stage 2 of a PREPARED deployment, or with opt.AtWindow
// schedules it for the next window opening. Errors: NotFound;
// InvalidArgument for inconsistent options; FailedPrecondition if it is
// not PREPARED, has expired, needs an approval, no deployment window is
// open (unless opt.Force), or an agent is not connected or lacks a
// release.
func (s *Service) Continue(ctx context.Context, actor, id string, opt ContinueOptions) (*store.Deployment, error) {
	if err := opt.validate(); err != nil {
		return nil, err
	}
	if opt.AtWindow {
		return s.schedule(actor, id, opt.RequirePrepared)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []outgoing
	d, err := s.update(id, func(tx *store.Tx, d *store.Deployment) error {
		now := s.clock()
		env, err := tx.Environment(d.Environment)
		if err != nil {
			return err
		}
		if err := checkContinue(d, env, now); err != nil {
			return err
		}
		forced, err := checkWindow(d, env, now, opt, "continue")
		if err != nil {
			return err
		}
		if forced != "" {
			note(d, now, actor, forced)
		}
		d.RequirePrepared = opt.RequirePrepared || env.RequirePrepared
		out, err = s.startStage2(tx, d, actor)
		return err
	})
	if err != nil {
		return nil, err
	}
	s.log.Info("deployment activating", "deployment", d.ID, "environment", d.Environment, "actor", actor, "sql_migrations", d.SQLPending)
	s.send(out)
	if needsSQL(d) {
		s.spawnSQL(d.ID, false)
	}
	s.watchers.publish(d)
	return d, nil
}

// startStage2 checks that every agent can take stage 2 and begins it,
// returning the commands to send. FailedPrecondition, d unchanged, if an
// agent that staged is not connected, or (d.RequirePrepared) a connected
// agent lacks a release.
func (s *Service) startStage2(tx *store.Tx, d *store.Deployment, actor string) ([]outgoing, error) {
	connected := s.fleet.Connected(d.Environment)
	known, err := knownAgents(tx)
	if err != nil {
		return nil, err
	}
	if problems := checkActivatable(d, connected, known, d.RequirePrepared); problems != "" {
		hint := "reconnect the agents, or remove those gone for good (`cutoverctl agent remove NAME`), or abort it and prepare a new deployment"
		if d.RequirePrepared {
			hint = "wait for the front-ends that connected late to be staged in the background, or continue without require_prepared (and with the environment's require_prepared off) to stage on them inside the window, or stop those agents"
		}
		return nil, fmt.Errorf("deployment %s cannot continue: %s; %s; it stays PREPARED: %w",
			d.ID, problems, hint, errkind.FailedPrecondition)
	}
	if err := s.predictFor(tx, d); err != nil { // the one to compare stage 2 with
		return nil, err
	}
	return s.beginActivation(tx, d, connected, actor)
}

// Abort ends a PLANNED, PREPARING or PREPARED deployment (ABORTED) and has
// the agents drop what they staged for it. Errors: NotFound;
// FailedPrecondition once stage 2 started or the deployment ended.
func (s *Service) Abort(ctx context.Context, actor, id, reason string) (*store.Deployment, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := s.update(id, func(tx *store.Tx, d *store.Deployment) error {
		if err := checkAbort(d); err != nil {
			return err
		}
		msg := "aborted by " + actor
		if reason != "" {
			msg += ": " + reason
		}
		transition(d, store.Aborted, s.clock(), actor, msg)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if cancel := s.cancels[id]; cancel != nil {
		cancel()
	}
	s.finished(d)
	return d, nil
}

// knownAgents returns the names of the agents the controller knows (not
// removed), connected or not.
func knownAgents(tx *store.Tx) (map[string]bool, error) {
	all, err := tx.Agents()
	if err != nil {
		return nil, err
	}
	out := make(map[string]bool, len(all))
	for _, a := range all {
		out[a.Name] = true
	}
	return out, nil
}

// leftOut returns the names of the agents of env that the controller knows
// but that are not connected.
func leftOut(known []*store.Agent, connected []fleet.AgentView, env string) []string {
	var out []string
	for _, a := range known {
		if a.Environment == env && !slices.ContainsFunc(connected, func(c fleet.AgentView) bool { return c.Name == a.Name }) {
			out = append(out, a.Name)
		}
	}
	return out
}

// errUnchanged, returned by an update's fn, commits nothing and is no error.
var errUnchanged = errors.New("unchanged")

// update loads deployment id in a write transaction, lets fn change it and
// stores it, durably, before it returns. If fn returns errUnchanged nothing
// is written and d is nil. Call with s.mu held.
func (s *Service) update(id string, fn func(tx *store.Tx, d *store.Deployment) error) (*store.Deployment, error) {
	var d *store.Deployment
	var before map[string]time.Duration
	err := s.store.Update(func(tx *store.Tx) error {
		var err error
		if d, err = tx.Deployment(id); err != nil {
			return err
		}
		before = stageDurations(d)
		steps := len(d.History)
		if err := fn(tx, d); err != nil {
			return err
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
	s.metrics.observeStages(before, d)
	return d, nil
}

// auditOwnSteps appends an audit entry for each step in steps that the
// controller took by itself; the caller's steps are audited by the guard.
func (s *Service) auditOwnSteps(tx *store.Tx, d *store.Deployment, steps []store.Transition) error {
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

// outgoing is a command for one agent, sent once its state is committed.
type outgoing struct {
	agent string
	cmd   fleet.Command
}

func (s *Service) send(out []outgoing) {
	for _, o := range out {
		s.fleet.Send(o.agent, o.cmd)
	}
}

func releases(d *store.Deployment) []fleet.ReleaseRef {
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
func (s *Service) finished(d *store.Deployment) {
	s.fleet.Forget(d.ID)
	// Front-ends that left commit unanswered: the fleet keeps these until
	// they answer, so they get them when they come back (reconcile.go).
	s.send(reconcileCommands(d))
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
	if d.State == store.Deployed && d.Package != nil && d.Package.Pending {
		s.spawnPackage(d.ID)
	}
	if d.State == store.RolledBack && d.RollbackKey != "" {
		// Rolled back by command: its run was counted as deployed when it
		// ended; it now counts as rolled back too.
		s.metrics.rollbacks.WithLabelValues(d.Environment, resultRolledBack).Inc()
	}
	s.metrics.finished.WithLabelValues(d.Environment, stateLabel(d.State)).Inc()
	s.log.Info("deployment ended", "deployment", d.ID, "environment", d.Environment, "state", d.State, "error", d.Error)
	s.watchers.publish(d)
}
