package deployment

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cutover-dev/cutover/controlplane/fleet"
	"github.com/cutover-dev/cutover/controlplane/migrate"
	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/pkg/errkind"
	"github.com/cutover-dev/cutover/pkg/window"
)

// The SQL of a deployment.
//
// Prepare (buildAndStage) reads each release's migration files, generates
// the plan with migrate.Generate (read-only) and stores it with the
// release ids, in one commit, before any agent is asked to stage; the
// number of pending migrations goes into Deployment.SQLPending.
//
// Stage 2 with SQLPending > 0 reaches the sql step (stage2.go) after the
// agents armed and the before_activate hooks ran, with no command out; then
// runSQL runs the plan (migrate.Execute, bounded by Config.SQLTimeout and by
// the end of the deployment window open now) and,
// in one commit, records SQLDuration and SQLDone together with the commit
// commands, which it sends only after that commit. A failure ends the
// deployment FAILED (after its after_activate hooks where before_activate
// ran) before any agent was sent commit.
//
// Crashes: once SQLDone is committed, a restarted controller resends the
// commit commands and never touches the database again. If it died
// before that commit, it cannot know from its own store whether the SQL
// ran (the database may have committed a group just before the crash), so
// resume runs the plan with migrate.Resume instead of Execute: the
// bookkeeping rows are written in the same transaction as each group's
// migrations and carry the deployment id, so the database itself says which
// groups this plan already applied, and those are not run again.

// DefaultSQLTimeout bounds the SQL part of stage 2 when Config.SQLTimeout
// is 0.
const DefaultSQLTimeout = 10 * time.Minute

// databaseOf returns the migrate.DB of env, fenced with the leader's
// epoch, and false when env has none.
func (s *Service) databaseOf(env *model.Environment) (migrate.DB, bool) {
	db := env.Database
	if db.Driver == "" && db.DSN == "" {
		return migrate.DB{}, false
	}
	return migrate.DB{Driver: db.Driver, DSN: db.DSN, StatementTimeout: db.StatementTimeout, LockTimeout: db.LockTimeout, Epoch: s.epoch()}, true
}

// needsSQL says whether d is in stage 2 and waits for its SQL part: no
// activate command has been sent yet.
// A record from before the stage 2 steps (Step empty) waits for its SQL
// part when SQLDone is not set.
func needsSQL(d *model.Deployment) bool {
	if d.State != model.Activating || d.RollingBack {
		return false
	}
	return d.Step == model.StepSQL || (d.Step == "" && !d.SQLDone && d.SQLPending > 0)
}

// planSQL generates the SQL plan of deployment d from the migration files
// of its releases (migrations, by application; an application without
// files has none). It returns the plan, or the reason stage 1 fails. It
// does not write to the database.
func (s *Service) planSQL(ctx context.Context, d *model.Deployment, migrations map[string][]migrate.File) (*migrate.Plan, string) {
	var env *model.Environment
	if err := s.store.View(func(tx model.Tx) error {
		var err error
		env, err = tx.Environment(d.Environment)
		return err
	}); err != nil {
		return nil, fmt.Sprintf("environment %s: %s", d.Environment, kindless(err))
	}
	apps := make([]migrate.AppFiles, 0, len(d.Applications))
	var with []string
	for _, a := range d.Applications {
		files := migrations[a.Name]
		apps = append(apps, migrate.AppFiles{Application: a.Name, Files: files})
		if len(files) > 0 {
			with = append(with, fmt.Sprintf("%s (%d)", a.Name, len(files)))
		}
	}
	db, ok := s.databaseOf(env)
	if !ok {
		if len(with) > 0 {
			return nil, fmt.Sprintf("applications with migrations: %s, but environment %s has no database; set it with `cutoverctl env update %s --db-driver sqlite|postgres --db-dsn DSN`, then create and prepare a new deployment; nothing was sent to the agents",
				strings.Join(with, ", "), env.Name, env.Name)
		}
		return &migrate.Plan{DeploymentID: d.ID}, ""
	}
	ctx, cancel := context.WithTimeout(ctx, s.sqlTimeout)
	defer cancel()
	plan, err := migrate.Generate(ctx, db, d.ID, apps)
	if err != nil {
		return nil, fmt.Sprintf("generating the SQL script against %s failed: %s; the database was not changed and nothing was sent to the agents", db, kindless(err))
	}
	if reason := s.checkSQL(ctx, env, db, plan, migrations); reason != "" { // shadow.go
		return nil, reason
	}
	return plan, ""
}

// storeSQLPlan records plan with d, inside the commit that records d's
// release ids.
func storeSQLPlan(tx model.Tx, d *model.Deployment, plan *migrate.Plan) error {
	raw, err := json.Marshal(plan)
	if err != nil {
		return fmt.Errorf("encode the SQL plan of %s: %w", d.ID, err)
	}
	d.SQLPending = len(plan.Pending)
	if plan.Contract != nil {
		d.ContractPending = len(plan.Contract.Pending)
	}
	return tx.PutSQLPlan(d.ID, raw)
}

// SQLPlan returns the SQL plan of deployment id: the script continue runs
// and its pending migrations. Errors: NotFound for an unknown deployment;
// FailedPrecondition when prepare has not made the plan (yet).
func (s *Service) SQLPlan(ctx context.Context, id string) (*migrate.Plan, error) {
	var raw []byte
	err := s.store.View(func(tx model.Tx) error {
		d, err := tx.Deployment(id)
		if err != nil {
			return err
		}
		raw, err = tx.SQLPlan(id)
		if errors.Is(err, errkind.NotFound) {
			return fmt.Errorf("deployment %s is %s and has no SQL plan: prepare makes it once the builds are done (a deployment that failed or was aborted before that has none): %w",
				id, d.State, errkind.FailedPrecondition)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return decodePlan(id, raw)
}

func decodePlan(id string, raw []byte) (*migrate.Plan, error) {
	plan := new(migrate.Plan)
	if err := json.Unmarshal(raw, plan); err != nil {
		return nil, fmt.Errorf("the stored SQL plan of deployment %s cannot be read: %v: %w", id, err, errkind.DataLoss)
	}
	return plan, nil
}

// spawnSQL starts the SQL part of stage 2 of deployment id, if Run is
// running (otherwise Run's resume starts it). resumed says that an earlier
// controller process may have run it already. Call with s.mu held.
func (s *Service) spawnSQL(id string, resumed bool) {
	if s.runCtx == nil {
		return
	}
	ctx := s.runCtx
	s.wg.Go(func() {
		if err := s.runSQL(ctx, id, resumed); err != nil && ctx.Err() == nil {
			s.logFor(id).Error("stage 2 SQL", "err", err)
		}
	})
}

// runSQL runs the stored plan of deployment id against its environment's
// database, then records the outcome and, on success, sends activate.
func (s *Service) runSQL(ctx context.Context, id string, resumed bool) error {
	d, env, plan, err := s.loadSQL(id)
	if err != nil {
		return s.sqlDone(id, 0, err, true)
	}
	if !needsSQL(d) {
		return nil
	}
	db, ok := s.databaseOf(env)
	if !ok {
		return s.sqlDone(id, 0, fmt.Errorf("environment %s no longer has a database, and the plan has %d migration(s) to run; set it again with `cutoverctl env update %s --db-driver --db-dsn`",
			env.Name, len(plan.Pending), env.Name), true)
	}
	budget, bound := s.sqlBudget(env)
	s.log.Info(runVerb(resumed)+" the SQL script", "deployment", id, "environment", env.Name, "database", db, "migrations", len(plan.Pending), "budget", budget)
	res, took, err := s.runPlan(ctx, db, plan, resumed, "the SQL part of stage 2", budget, bound)
	if ctx.Err() != nil {
		return ctx.Err() // stopping: the next controller resumes it
	}
	if err == nil {
		s.log.Info("SQL script done", "deployment", id, "environment", env.Name, "applied", len(res.Applied), "skipped", len(res.Skipped), "duration", took)
	}
	return s.sqlDone(id, took, err, err != nil && sqlUnchanged(plan, res, err))
}

// runVerb says how a plan is run: from the start, or resumed.
func runVerb(resumed bool) string {
	if resumed {
		return "resuming"
	}
	return "running"
}

// runPlan runs plan on db (resumed: an earlier run may have applied part
// of it) within budget, timed by the service's clock. A run the budget
// cut short says that what may take budget, and bound, what set it. The
// caller checks ctx: a controller that stops leaves the run to the next
// one.
func (s *Service) runPlan(ctx context.Context, db migrate.DB, plan *migrate.Plan, resumed bool, what string, budget time.Duration, bound string) (*migrate.Result, time.Duration, error) {
	run := migrate.Execute
	if resumed {
		run = migrate.Resume
	}
	runCtx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	start := s.clock()
	res, err := run(runCtx, db, plan)
	took := s.clock().Sub(start)
	if err != nil && runCtx.Err() != nil && ctx.Err() == nil {
		err = fmt.Errorf("%w (%s may take %s: %s)", err, what, budget.Round(time.Second), bound)
	}
	return res, took, err
}

// loadSQL reads deployment id, its environment and its stored SQL plan.
func (s *Service) loadSQL(id string) (d *model.Deployment, env *model.Environment, plan *migrate.Plan, err error) {
	err = s.store.View(func(tx model.Tx) error {
		var err error
		if d, err = tx.Deployment(id); err != nil {
			return err
		}
		if env, err = tx.Environment(d.Environment); err != nil {
			return err
		}
		raw, err := tx.SQLPlan(id)
		if err != nil {
			return err
		}
		plan, err = decodePlan(id, raw)
		return err
	})
	return d, env, plan, err
}

// sqlUnchanged says that a run of plan that failed with err left the
// database as it was, so that it may simply run again: no group committed
// (none applied, none found applied by an earlier run), and err is a
// statement refused inside a transaction (rolled back), or the database or
// its lock could not be had. Drift ("prepare again"), a bad plan and a
// failure inside a no-transaction migration (its earlier statements stay
// applied) are not.
func sqlUnchanged(plan *migrate.Plan, res *migrate.Result, err error) bool {
	if res != nil && (len(res.Applied) > 0 || len(res.Skipped) > 0) {
		return false
	}
	if se, ok := errors.AsType[*migrate.StatementError](err); ok {
		for _, p := range plan.Pending {
			if p.Application == se.Application && p.Version == se.Version {
				return !p.NoTransaction
			}
		}
		return false
	}
	return errors.Is(err, errkind.Unavailable) || errors.Is(err, errkind.DeadlineExceeded)
}

// sqlBudget is how long the SQL part of stage 2 may take in env, and why:
// Config.SQLTimeout, cut to what is left of the deployment window open now,
// windows that follow one another without a gap counting as one (a stage 2
// forced outside the windows gets the whole SQLTimeout).
func (s *Service) sqlBudget(env *model.Environment) (time.Duration, string) {
	budget, bound := s.sqlTimeout, "the controller's --sql-timeout"
	sched, err := window.ParseAll(env.Windows)
	if err != nil || len(sched) == 0 {
		return budget, bound
	}
	now := s.clock()
	if open, closes := sched.OpenUntil(now); open && closes.After(now) && closes.Sub(now) < budget {
		budget, bound = closes.Sub(now), fmt.Sprintf("the deployment window closes at %s", closes.Format("15:04:05 MST"))
	}
	return budget, bound
}

// sqlDone records the end of the SQL part of stage 2: on success SQLDone
// and the activate commands, committed before they are sent; on failure,
// no agent having been sent commit, PREPARED again if unchanged (the
// database is as it was: sqlUnchanged), FAILED otherwise.
func (s *Service) sqlDone(id string, took time.Duration, sqlErr error, unchanged bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []fleet.Outgoing
	d, err := s.update(id, func(tx model.Tx, d *model.Deployment) error {
		if !needsSQL(d) {
			return errUnchanged
		}
		d.SQLDuration = took
		var err error
		if sqlErr != nil {
			f := FailSQLUnchanged
			if !unchanged {
				f = FailSQLChanged
			}
			out, err = s.endStage2(tx, d, AfterFailure(f), sqlFailure(sqlErr, unchanged))
			return err
		}
		d.SQLDone = true
		out, err = s.advance(tx, d)
		return err
	})
	if err != nil || d == nil {
		return err
	}
	s.afterStep(d, out, d.State.Final())
	return nil
}

// sqlFailure is the reason recorded when stage 2's SQL part fails;
// unchanged says that the database is as it was (sqlUnchanged).
func sqlFailure(err error, unchanged bool) string {
	msg := "stage 2 stopped before any swap: the SQL script failed: " + kindless(err) +
		"; no agent was sent commit, every front-end runs what it ran before"
	switch {
	case unchanged:
		msg += "; no part of the script committed, the database is as it was" + againHint
	case !strings.Contains(msg, "prepare again"):
		msg += "; fix the cause, then prepare again (create and prepare a new deployment)"
	}
	return msg
}
