package deployment

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cutover-dev/cutover/controlplane/fleet"
	"github.com/cutover-dev/cutover/controlplane/migrate"
	"github.com/cutover-dev/cutover/controlplane/model"
)

// The database steps: the contract phase, and the down plans.
//
// The order keeps every moment compatible with what runs (drawn in
// docs/architecture.md):
//
//	stage 2:   expand (v1 runs: it tolerates the expanded schema)
//	           → swap to v2 → health, validate hooks
//	           → contract (only v2 runs)                  → after_activate
//	  failed:  → swap back to v1 → undo_expand (v1 runs)  → after_activate
//	rollback --with-database of a DEPLOYED deployment:
//	           undo_contract (v2 runs: the expanded schema is what it was
//	           built for) → arm v1, before_activate → swap back to v1
//	           → undo_expand (v1 runs) → after_activate
//
// Each step runs one plan that prepare stored (Plan.Contract,
// Plan.Contract.Down, Plan.Down) with migrate.Execute, or migrate.Resume
// when it may have run before (a restarted controller, a continue after a
// failed contract), under the migration lock with the environment's
// timeouts, like the sql step. No command is out while one runs.
//
// The contract phase runs only in a stage 2 whose commit succeeded; a
// failure in it leaves the deployment ACTIVATING in the contract step with
// ContractError (what committed, what did not); continue resumes it.
// Stage 2's undo_expand runs only when every expand migration it applied
// has a down file and no front-end may still run the new release; the
// deployment's error and history say what it did, or why not. A rollback
// by command refuses --with-database when a migration it would undo is
// irreversible, unless forced with a reason (those then stay applied).

// dbStep is the database step d waits for, or "" when none runs.
func dbStep(d *model.Deployment) model.Stage2Step {
	switch {
	case d.State == model.Activating && d.Step == model.StepContract && d.ContractError == "" && !d.RollingBack:
		return model.StepContract
	case d.State == model.Activating && d.Step == model.StepUndoExpand,
		d.State == model.Deployed && d.RollingBack && (d.Step == model.StepUndoContract || d.Step == model.StepUndoExpand):
		return d.Step
	}
	return ""
}

// planFor returns the plan that step st of d runs (nil when none).
func planFor(plan *migrate.Plan, st model.Stage2Step) *migrate.Plan {
	switch st {
	case model.StepContract:
		return plan.Contract
	case model.StepUndoContract:
		if plan.Contract != nil {
			return plan.Contract.Down
		}
	case model.StepUndoExpand:
		return plan.Down
	}
	return nil
}

// spawnDB starts the database step of deployment id, if Run is running
// and none runs for it. resumed: an earlier run may have applied part of
// it. Call with s.mu held.
func (s *Service) spawnDB(id string, resumed bool) {
	if s.runCtx == nil || s.dbRunning[id] {
		return
	}
	s.dbRunning[id] = true
	ctx := s.runCtx
	s.wg.Go(func() {
		err := s.runDB(ctx, id, resumed)
		s.mu.Lock()
		delete(s.dbRunning, id)
		s.mu.Unlock()
		if err != nil && ctx.Err() == nil {
			s.logFor(id).Error("stage 2 database step", "err", err)
		}
	})
}

// runDB runs the plan of the database step deployment id is in, then
// records its end (dbDone).
func (s *Service) runDB(ctx context.Context, id string, resumed bool) error {
	d, env, plan, err := s.loadSQL(id)
	if err != nil {
		return err
	}
	st := dbStep(d)
	if st == "" {
		return nil
	}
	p := planFor(plan, st)
	if st == model.StepUndoExpand && d.ContractDone && plan.Contract != nil && p != nil {
		var kept []migrate.Pending // a forced rollback left them applied
		for _, i := range plan.Contract.Irreversible {
			kept = append(kept, i.Pending)
		}
		p = p.WithKept(kept)
	}
	db, ok := s.databaseOf(env)
	var res *migrate.Result
	var took time.Duration
	switch {
	case p.Empty():
		res = &migrate.Result{}
	case !ok:
		err = fmt.Errorf("environment %s no longer has a database; set it again with `cutoverctl env update %s --db-driver --db-dsn`", env.Name, env.Name)
	default:
		resumed = resumed || (st == model.StepContract && d.ContractRuns > 1)
		budget, bound := s.sqlTimeout, "the controller's --sql-timeout"
		if st == model.StepContract {
			budget, bound = s.sqlBudget(env)
		}
		s.log.Info(runVerb(resumed)+" a database step", "deployment", id, "environment", env.Name, "step", st, "database", db, "migrations", len(p.Pending))
		res, took, err = s.runPlan(ctx, db, p, resumed, "the step", budget, bound)
		if ctx.Err() != nil {
			return ctx.Err() // stopping: the next controller resumes it
		}
	}
	return s.dbDone(id, st, p, res, took, err)
}

// dbDone records the end of database step st of deployment id and takes
// the step that follows.
func (s *Service) dbDone(id string, st model.Stage2Step, p *migrate.Plan, res *migrate.Result, took time.Duration, runErr error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []fleet.Outgoing
	ended := false
	d, err := s.update(id, func(tx model.Tx, d *model.Deployment) error {
		if dbStep(d) != st {
			return errUnchanged
		}
		before := d.State
		now := s.clock()
		var err error
		switch st {
		case model.StepContract:
			d.ContractDuration = took
			if runErr != nil {
				d.ContractError = contractFailure(d, p, res, runErr)
				d.Error = d.ContractError
				note(d, now, ControllerActor, d.ContractError)
				return nil
			}
			d.ContractDone = true
			out, err = s.endStage2(tx, d, model.Deployed, fmt.Sprintf("every agent runs the new releases; the contract phase ran after their health checks and validate hooks: %s", applied(res)))
		case model.StepUndoContract:
			if runErr != nil {
				reason := fmt.Sprintf("rollback with the database stopped before any swap: undoing the contract phase failed: %s; %s; every front-end still runs the releases of %s; fix the cause, then retry with `cutoverctl deploy rollback %s --with-database`",
					kindless(runErr), undoOutcome(p, res, runErr), d.ID, d.ID)
				d.RollingBack, d.Error, d.RollbackDatabase = false, reason, false
				note(d, now, ControllerActor, reason)
				return nil
			}
			d.SchemaUndone = append(d.SchemaUndone, "contract")
			note(d, now, ControllerActor, "the contract phase was undone while the new releases still run: "+undone(res))
			out = s.enterRollbackStep(d, model.StepArm)
		case model.StepUndoExpand:
			msg := "the database was rolled back after the fleet: the expand phase was undone: " + undone(res)
			if runErr != nil {
				msg = fmt.Sprintf("undoing the expand phase after the fleet went back failed: %s; %s", kindless(runErr), undoOutcome(p, res, runErr))
			} else {
				d.SchemaUndone = append(d.SchemaUndone, "expand")
			}
			d.DatabaseOutcome = joinOutcome(d.DatabaseOutcome, msg)
			if d.State == model.Deployed {
				out, err = s.endRollback(tx, d, step{to: model.RolledBack, reason: rolledBackReason(d)}, now)
			} else {
				out, err = s.endStage2(tx, d, d.Ending, d.Error+"; "+msg)
			}
		}
		ended = d.State != before && d.State.Final()
		return err
	})
	if err != nil || d == nil {
		return err
	}
	s.afterStep(d, out, ended)
	return nil
}

// applied names what a phase applied (and skipped as applied before).
func applied(res *migrate.Result) string {
	if res == nil || len(res.Applied)+len(res.Skipped) == 0 {
		return "nothing to apply"
	}
	out := names(res.Applied) + " applied"
	if len(res.Skipped) > 0 {
		out += fmt.Sprintf(" (%s applied by an earlier run)", names(res.Skipped))
	}
	return out
}

// undone names what a down plan ran.
func undone(res *migrate.Result) string {
	if res == nil || len(res.Applied)+len(res.Skipped) == 0 {
		return "nothing to undo"
	}
	return names(append(slices.Clone(res.Skipped), res.Applied...)) + " ran, their bookkeeping rows deleted"
}

func names(ps []migrate.Pending) string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Application + ":" + p.Name
	}
	return strings.Join(out, ", ")
}

// contractFailure says why the contract phase of d stopped, what
// committed and what did not.
func contractFailure(d *model.Deployment, p *migrate.Plan, res *migrate.Result, err error) string {
	done := map[string]bool{}
	if res != nil {
		for _, x := range append(slices.Clone(res.Skipped), res.Applied...) {
			done[x.Application+":"+x.Name] = true
		}
	}
	var committed, not []string
	for _, x := range p.Pending {
		if done[x.Application+":"+x.Name] {
			committed = append(committed, x.Application+":"+x.Name)
		} else {
			not = append(not, x.Application+":"+x.Name)
		}
	}
	say := func(xs []string) string {
		if len(xs) == 0 {
			return "none"
		}
		return strings.Join(xs, ", ")
	}
	return fmt.Sprintf("the contract phase failed: %s; committed: %s; not committed: %s; every front-end runs the new releases and the expand phase stays applied; fix the cause, then run `cutoverctl deploy continue %s` to resume the contract phase where it stopped",
		kindless(err), say(committed), say(not), d.ID)
}

// undoOutcome says what a down plan that failed left.
func undoOutcome(p *migrate.Plan, res *migrate.Result, err error) string {
	_, statement := errors.AsType[*migrate.StatementError](err)
	switch {
	case sqlUnchanged(p, res, err), !statement && (res == nil || len(res.Applied) == 0):
		return "nothing of it committed: the database is as it was before the undo"
	case res != nil && len(res.Applied) > 0:
		return "these down files committed: " + names(res.Applied) + "; the others did not"
	}
	return "what stayed applied is in the error above"
}

func joinOutcome(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}
