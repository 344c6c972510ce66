package deployment

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cutover-dev/cutover/controlplane/fleet"
	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/pkg/appspec"
)

// Stage 2 runs in steps (model.Stage2Step), each committed with the
// commands it sends before they are sent:
//
//  1. arm: every connected agent stages the releases if it lacks them (a
//     front-end that joined after prepare) or verifies every file against
//     the manifest (re-staging a damaged one), and prepares `current.next`.
//     Nothing running changes. Any failure ends stage 2: the deployment is
//     PREPARED again (rules.go, Failure), continue may be called again.
//  2. before_activate: the agents the hook plan names run those hooks. A
//     failure ends stage 2 before the SQL: PREPARED again.
//  3. sql: the controller runs the SQL script (sql.go), if there is one. A
//     failure before any group committed: PREPARED again; after: FAILED.
//  4. commit: only now, and to every agent at once, commit: swap, restart,
//     health, validate hooks. A failure rolls back the agents that swapped.
//  5. after_activate: the agents the plan names run those hooks, after a
//     success, and also after a failure on the agents where before_activate
//     ran, so that what before_activate suspended is resumed.
//
// A stage 2 that ends before any commit has every agent disarmed
// (finished); nothing was swapped.

// beginActivation moves d to ACTIVATING with the connected agents, plans
// its hooks, takes the environment's keep_releases for the commits, and
// returns the arm commands.
func (s *Service) beginActivation(tx model.Tx, d *model.Deployment, connected []fleet.AgentView, actor string) ([]fleet.Outgoing, error) {
	hooks, err := deploymentHooks(tx, d)
	if err != nil {
		return nil, err
	}
	env, err := tx.Environment(d.Environment)
	if err != nil {
		return nil, err
	}
	d.KeepReleases = KeepReleases(env)
	d.StageRate = env.StageRate // arm stages what an agent lacks: the cap as it is now
	d.Deadlines = Deadlines(env)
	plan := planHooks(hooks, labelsOf(connected))
	var late []string
	old := d.Agents
	d.Agents = nil
	for _, v := range connected {
		a := model.DeploymentAgent{Name: v.Name, State: model.AgentStaged, Plan: plan[v.Name]}
		if i := slices.IndexFunc(old, func(o model.DeploymentAgent) bool { return o.Name == v.Name }); i >= 0 {
			a.ReleaseBytes, a.TransferredBytes, a.SavedCounted = old[i].ReleaseBytes, old[i].TransferredBytes, old[i].SavedCounted
		} else {
			a.State = model.AgentPending
		}
		if !holdsAll(d, v) {
			late = append(late, v.Name)
		}
		d.Agents = append(d.Agents, a)
	}
	steps := []string{fmt.Sprintf("arm %d agents (verify every file of the staged releases)", len(d.Agents))}
	if n := countKind(plan, appspec.BeforeActivate); n > 0 {
		steps = append(steps, fmt.Sprintf("before_activate hooks (%d)", n))
	}
	if d.SQLPending > 0 {
		steps = append(steps, fmt.Sprintf("the SQL script (%d migration(s))", d.SQLPending))
	}
	steps = append(steps, "commit the swap on every agent together")
	msg := "stage 2: " + strings.Join(steps, ", then ") + "; each step ends by its deadline (" + FormatDeadlines(d.Deadlines) + ")"
	if len(late) > 0 {
		msg += fmt.Sprintf("; staged first on %s (they do not hold the releases: joined after prepare, or lost them)", strings.Join(late, ", "))
	}
	transition(d, model.Activating, s.clock(), actor, msg)
	return s.enterStep(d, model.StepArm), nil
}

// holdsAll says whether v reported every release of d as staged or running.
func holdsAll(d *model.Deployment, v fleet.AgentView) bool {
	for _, app := range d.Applications {
		if !v.Holds(app.Name, app.ReleaseID) {
			return false
		}
	}
	return true
}

func countKind(plan map[string][]model.HookRef, kind appspec.HookKind) int {
	n := 0
	for _, refs := range plan {
		for _, r := range refs {
			if r.Kind == string(kind) {
				n++
			}
		}
	}
	return n
}

// stepKind is the command kind of a step, and the hook kind its commands
// carry (before_activate, after_activate; validate with commit).
func stepKind(st model.Stage2Step) (fleet.CommandKind, appspec.HookKind) {
	switch st {
	case model.StepArm:
		return fleet.Arm, ""
	case model.StepBefore:
		return fleet.Hooks, appspec.BeforeActivate
	case model.StepAfter:
		return fleet.Hooks, appspec.AfterActivate
	case model.StepSQL, model.StepContract, model.StepUndoContract, model.StepUndoExpand:
		return "", ""
	}
	return fleet.Commit, appspec.Validate
}

// commandFor builds the command of d's current step for agent a.
func commandFor(d *model.Deployment, a *model.DeploymentAgent) fleet.Command {
	kind, hk := stepKind(d.Step)
	c := fleet.Command{Kind: kind, ID: a.Command, DeploymentID: d.ID, Releases: releases(d)}
	switch kind {
	case fleet.Arm:
		c.VerifyOnly, c.StageRate = d.RequirePrepared, d.StageRate
	case fleet.Hooks, fleet.Commit:
		c.Hooks = refsOf(a, hk)
	}
	if kind == fleet.Commit {
		c.KeepReleases = d.KeepReleases
		c.Hold = holds(d)
	}
	return c
}

// stepCommandID is the id of the command of d's current step for agent:
// the hook steps are told apart by their name.
func stepCommandID(d *model.Deployment, agent string) string {
	kind, _ := stepKind(d.Step)
	if kind == fleet.Hooks {
		kind = fleet.CommandKind(d.Step)
	}
	return commandID(d, kind, agent)
}

// enterStep moves d to step st and returns its commands: for arm and
// commit, to every agent; for the hook steps, to the agents with hooks of
// that kind (after_activate after a failure: only where before_activate
// ran). The SQL step sends nothing (the caller starts it).
func (s *Service) enterStep(d *model.Deployment, st model.Stage2Step) []fleet.Outgoing {
	d.Step, d.StepTime = st, s.clock()
	s.poke() // a new step deadline to watch
	var out []fleet.Outgoing
	_, hk := stepKind(st)
	for i := range d.Agents {
		a := &d.Agents[i]
		a.StepError = ""
		switch st {
		case model.StepSQL, model.StepContract, model.StepUndoExpand:
			continue
		case model.StepBefore, model.StepAfter:
			if len(refsOf(a, hk)) == 0 || (st == model.StepAfter && d.Ending != model.Deployed && !a.BeforeRan) {
				continue
			}
			a.BeforeRan = a.BeforeRan || st == model.StepBefore
		case model.StepCommit:
			a.State = model.AgentActivating
			a.Ready, a.FinishSent = false, false
		}
		a.Command = stepCommandID(d, a.Name)
		out = append(out, fleet.Outgoing{Agent: a.Name, Command: commandFor(d, a)})
	}
	return out
}

// stepAnswered says that every command of the current step was answered.
func stepAnswered(d *model.Deployment) bool {
	return !slices.ContainsFunc(d.Agents, func(a model.DeploymentAgent) bool { return a.Command != "" })
}

// advance moves d past a step that succeeded, skipping the steps with
// nothing to do, and returns the commands to send (none for the SQL step:
// the caller starts it when needsSQL(d)).
func (s *Service) advance(tx model.Tx, d *model.Deployment) ([]fleet.Outgoing, error) {
	now := s.clock()
	took := now.Sub(d.StepTime)
	switch d.Step {
	case model.StepArm:
		d.ArmDuration = took
		if out := s.enterStep(d, model.StepBefore); len(out) > 0 {
			return out, nil
		}
	case model.StepBefore:
		d.HooksDuration += took
	}
	if d.SQLPending > 0 && !d.SQLDone {
		s.enterStep(d, model.StepSQL)
		return nil, nil
	}
	d.SQLDone, d.Committed = true, true
	return s.enterStep(d, model.StepCommit), nil
}

// endStage2 ends stage 2 with state to: first the after_activate step if
// it has agents to run on (after a failure, only where before_activate
// ran), then the final transition.
func (s *Service) endStage2(tx model.Tx, d *model.Deployment, to model.DeploymentState, reason string) ([]fleet.Outgoing, error) {
	to, reason = reconcileEnd(d, to, reason)
	now := s.clock()
	if d.Step == model.StepCommit && to == model.Deployed {
		d.SwapDuration = now.Sub(d.StepTime)
	}
	if d.Step == model.StepCommit {
		var entered bool
		var err error
		if reason, entered, err = s.enterDBStep(tx, d, to, reason); err != nil || entered {
			return nil, err
		}
	}
	if d.Step != model.StepAfter {
		d.Ending = to
		if to != model.Deployed {
			d.Error = reason
		}
		if out := s.enterStep(d, model.StepAfter); len(out) > 0 {
			return out, nil
		}
	} else {
		d.HooksDuration += now.Sub(d.StepTime)
	}
	if to == model.Deployed && !d.Reconcile { // a reconcile brought back what env records
		env, err := tx.Environment(d.Environment)
		if err != nil {
			return nil, err
		}
		finishDeployed(d, env, now)
		if err := tx.PutEnvironment(env); err != nil {
			return nil, err
		}
		if err := planPackage(tx, d); err != nil {
			return nil, err
		}
	}
	if !d.Committed { // disarmed by finished (or below): the agents hold the releases staged, as before
		for i := range d.Agents {
			if d.Agents[i].State == model.AgentArmed {
				d.Agents[i].State = model.AgentStaged
			}
		}
	}
	if to == model.Prepared {
		return backToPrepared(d, now, reason), nil
	}
	transition(d, to, now, ControllerActor, reason)
	return nil, nil
}

// backToPrepared ends a stage 2 that failed before anything changed (no
// commit sent, no SQL committed): d is PREPARED again, as it was before
// continue (its expiry and its prepared time unchanged), with the failure
// in its history, and every agent is disarmed. It returns the disarm
// commands.
func backToPrepared(d *model.Deployment, now time.Time, reason string) []fleet.Outgoing {
	prepared := d.PreparedTime
	transition(d, model.Prepared, now, ControllerActor, reason)
	d.PreparedTime = prepared
	d.Error, d.Ending, d.Step, d.StepTime = "", "", "", time.Time{}
	d.ActivateTime, d.SQLDone, d.Committed = time.Time{}, false, false
	d.ArmDuration, d.HooksDuration, d.SQLDuration, d.SwapDuration = 0, 0, 0, 0
	var out []fleet.Outgoing
	for i := range d.Agents {
		a := &d.Agents[i]
		a.Command, a.StepError, a.BeforeRan = "", "", false
		if a.State == model.AgentStaged {
			a.Error = ""
		}
		out = append(out, fleet.Outgoing{Agent: a.Name, Command: fleet.Command{Kind: fleet.Disarm, ID: commandID(d, fleet.Disarm, a.Name), DeploymentID: d.ID}})
	}
	return out
}

// afterReason is the reason of the final transition once the
// after_activate hooks of d were answered.
func afterReason(d *model.Deployment, failures string) string {
	reason := "every agent runs the new releases"
	if d.Ending != model.Deployed {
		reason = d.Error + "; after_activate hooks ran on the agents where before_activate ran"
	}
	if failures != "" {
		reason += "; but after_activate hooks failed: " + failures + "; check those front-ends"
	}
	return reason
}

// stepErrors joins the errors of the agents that failed the current step, or "".
func stepErrors(d *model.Deployment) string {
	var out []string
	for _, a := range d.Agents {
		if a.StepError != "" {
			out = append(out, fmt.Sprintf("agent %s: %s", a.Name, a.StepError))
		}
	}
	return strings.Join(out, "; ")
}

// pendingCommands rebuilds the commands d waits for (for a resend).
func pendingCommands(d *model.Deployment) []fleet.Outgoing {
	kind := phase(d)
	var out []fleet.Outgoing
	for i := range d.Agents {
		a := &d.Agents[i]
		if a.Command == "" {
			continue
		}
		c := fleet.Command{Kind: kind, ID: a.Command, DeploymentID: d.ID}
		switch {
		case kind == fleet.Stage:
			c.Releases = releases(d)
		case d.State == model.Activating && kind != fleet.Rollback:
			c = commandFor(d, a)
		case d.State == model.Deployed:
			c = rollbackCommand(d, a)
		}
		out = append(out, fleet.Outgoing{Agent: a.Name, Command: c})
	}
	return out
}
