package deployment

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cutover-dev/cutover/controlplane/migrate"
	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/pkg/errkind"
)

// RollbackOptions are the options of the rollback command.
type RollbackOptions struct {
	// Reason is recorded in the history (required with Force).
	Reason string
	// WithDatabase also undoes what the deployment's SQL applied: the
	// contract phase before the fleet swaps back, the expand phase after.
	WithDatabase bool
	// Force, with WithDatabase, undoes what can be undone when a
	// migration is irreversible, and leaves that one applied.
	Force bool
}

// storedPlan reads the SQL plan of d; a deployment prepared before plans
// existed has an empty one.
func storedPlan(tx model.Tx, id string) (*migrate.Plan, error) {
	raw, err := tx.SQLPlan(id)
	if errors.Is(err, errkind.NotFound) {
		return &migrate.Plan{DeploymentID: id}, nil
	}
	if err != nil {
		return nil, err
	}
	return decodePlan(id, raw)
}

// enterDBStep is called when stage 2's commit step of d ends with to: it
// enters the contract step after a success with a contract phase to run,
// or the undo_expand step after a failure when the expand phase applied
// migrations that can all be undone and no front-end may still run the new
// releases. It reports whether it entered one, and returns reason with
// why the database stays as it is, when it does.
func (s *Service) enterDBStep(tx model.Tx, d *model.Deployment, to model.DeploymentState, reason string) (string, bool, error) {
	if to == model.Deployed {
		if d.ContractPending == 0 || d.ContractDone {
			return reason, false, nil
		}
		d.ContractRuns++
		note(d, s.clock(), ControllerActor, fmt.Sprintf("%s; now the contract phase (%d migration(s))", reason, d.ContractPending))
		s.enterStep(d, model.StepContract)
		return reason, true, nil
	}
	if d.SQLPending == 0 || !d.SQLDone || slices.Contains(d.SchemaUndone, "expand") {
		return reason, false, nil
	}
	plan, err := storedPlan(tx, d.ID)
	if err != nil {
		return "", false, err
	}
	why := ""
	switch {
	case len(plan.Irreversible) > 0 || plan.Down == nil:
		why = "the database is NOT rolled back: the expand migrations stay applied, because " + irreversibleList(plan.Irreversible) + " cannot be undone; the releases that run now work with them (expand migrations must)"
	case mayRunNew(d) != "":
		why = "the database is NOT rolled back: the expand migrations stay applied, because front-ends " + mayRunNew(d) + " may still run the new releases, which need them"
	}
	if why != "" {
		d.DatabaseOutcome = why
		return reason + "; " + why, false, nil
	}
	d.Ending, d.Error = to, reason
	note(d, s.clock(), ControllerActor, reason+"; now undoing the expand phase ("+fmt.Sprint(len(plan.Down.Pending))+" down file(s))")
	s.enterStep(d, model.StepUndoExpand)
	return reason, true, nil
}

// resumeContract lets the contract phase of d, which stopped with
// ContractError, run again: it resumes where it stopped.
func resumeContract(d *model.Deployment, now time.Time, actor, forced string) {
	msg := fmt.Sprintf("continue again by %s: resuming the contract phase where it stopped (run %d)", actor, d.ContractRuns+1)
	if forced != "" {
		msg += "; " + forced
	}
	note(d, now, actor, msg)
	d.ContractError, d.Error = "", ""
	d.ContractRuns++
	d.StepTime = now
}

// irreversibleList names the irreversible migrations is.
func irreversibleList(is []migrate.Irreversible) string {
	if len(is) == 0 {
		return "no down plan was stored"
	}
	out := make([]string, len(is))
	for i, x := range is {
		out[i] = x.String()
	}
	return strings.Join(out, ", ")
}

// mayRunNew names the agents of d that may still run its releases after a
// failed stage 2: active, unanswered, or whose swap-back failed.
func mayRunNew(d *model.Deployment) string {
	var out []string
	for _, a := range d.Agents {
		if a.State == model.AgentActive || a.Unanswered != "" || strings.HasPrefix(a.Error, rollbackFailed) {
			out = append(out, a.Name)
		}
	}
	return strings.Join(out, ", ")
}

// planRollbackDB decides, for the rollback by command of d, what it does
// to the database: the warning or the plan it says in the history, and
// the step it starts with (undo_contract, or arm). Errors:
// InvalidArgument for --force without a reason or without
// --with-database; FailedPrecondition naming the irreversible migrations
// that --with-database would have to undo, without --force.
func planRollbackDB(tx model.Tx, d *model.Deployment, opt RollbackOptions) (string, model.Stage2Step, error) {
	if opt.Force && (!opt.WithDatabase || strings.TrimSpace(opt.Reason) == "") {
		return "", "", fmt.Errorf("rollback --force needs --with-database and a reason (--reason): it leaves irreversible migrations applied while undoing the others; nothing was changed: %w", errkind.InvalidArgument)
	}
	plan, err := storedPlan(tx, d.ID)
	if err != nil {
		return "", "", err
	}
	changed, irreversible := SchemaChanges(d, plan)
	d.RollbackDatabase, d.RollbackForced, d.DatabaseOutcome = opt.WithDatabase, opt.Force, ""
	if !opt.WithDatabase {
		if changed == 0 {
			return DatabaseNotRolledBack, model.StepArm, nil
		}
		return fmt.Sprintf("%s; WARNING: this deployment changed the schema (%d migration(s)): the releases that ran before will run against it; to undo it as well, roll back with --with-database", DatabaseNotRolledBack, changed), model.StepArm, nil
	}
	if changed == 0 {
		d.DatabaseOutcome = "the deployment applied no migration: the database has nothing to undo"
		return d.DatabaseOutcome, model.StepArm, nil
	}
	msg := "with the database: the contract phase is undone first, while the new releases run, then the fleet swaps back, then the expand phase is undone"
	if len(irreversible) > 0 {
		if !opt.Force {
			return "", "", fmt.Errorf("rollback --with-database of deployment %s would have to undo %s; nothing was changed: roll back the fleet only (without --with-database), or pass --force --reason to undo the other migrations and leave these applied: %w",
				d.ID, irreversibleList(irreversible), errkind.FailedPrecondition)
		}
		msg += fmt.Sprintf("; FORCED: %s stay applied", irreversibleList(irreversible))
		d.DatabaseOutcome = "forced: " + irreversibleList(irreversible) + " stayed applied"
	}
	if c := plan.Contract; c != nil && c.Down != nil && d.ContractDone && !slices.Contains(d.SchemaUndone, "contract") {
		return msg, model.StepUndoContract, nil
	}
	return msg, model.StepArm, nil
}

// SchemaChanges says what a rollback with the database of the DEPLOYED
// deployment d, whose stored SQL plan is plan, would have to undo: how
// many migrations its stage 2 applied (the expand phase, and the contract
// phase when it ran), and which of them are irreversible (a rollback with
// the database refuses them unless forced). The API's rollback and the
// console's rollback form both go by it.
func SchemaChanges(d *model.Deployment, plan *migrate.Plan) (changed int, irreversible []migrate.Irreversible) {
	changed = len(plan.Pending)
	irreversible = slices.Clone(plan.Irreversible)
	if c := plan.Contract; c != nil && d.ContractDone {
		changed += len(c.Pending)
		irreversible = append(irreversible, c.Irreversible...)
	}
	return changed, irreversible
}

// enterUndoExpandAfterSwapBack moves the rollback by command of d, whose
// agents all swapped back, to its undo_expand step when it undoes the
// database and the expand phase has a down plan. It reports whether it
// did.
func (s *Service) enterUndoExpandAfterSwapBack(tx model.Tx, d *model.Deployment) (bool, error) {
	if d.Step != model.StepCommit || !d.RollbackDatabase || slices.Contains(d.SchemaUndone, "expand") {
		return false, nil
	}
	plan, err := storedPlan(tx, d.ID)
	if err != nil || plan.Down == nil {
		return false, err
	}
	d.Step, d.StepTime = model.StepUndoExpand, s.clock()
	return true, nil
}

// databaseSummary is what a rollback by command of d says about the
// database.
func databaseSummary(d *model.Deployment) string {
	if !d.RollbackDatabase {
		return DatabaseNotRolledBack
	}
	if d.DatabaseOutcome == "" {
		return "the database was rolled back"
	}
	return d.DatabaseOutcome
}
