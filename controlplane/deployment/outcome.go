package deployment

import (
	"fmt"
	"slices"

	"github.com/cutover-dev/cutover/controlplane/fleet"
	"github.com/cutover-dev/cutover/controlplane/model"
)

// A front-end that was unreachable comes back (issue 14): outcome.go.
// (Not to be confused with reconcile.go, `cutoverctl env reconcile`,
// which brings drifted front-ends back to the releases their
// environment records.)
//
// An agent that left stage 2's commit, or the swap-back that follows a
// failed commit, unanswered when the step's deadline passed (deadline.go)
// may have swapped or not: the controller does not know. When the
// deployment ends, such an agent is sent the command that brings it to
// the outcome (outcomeCommand), which the fleet keeps until the agent
// answers, so that it gets it when it reconnects (and a restarted
// controller queues it again: resume). Both commands are harmless where
// nothing is to be done: the agent's rollback undoes the deployment's
// activation only where its journal says it swapped (and waits for a
// commit still running there to end first), and a commit answers from the
// journal when it committed already.
//
//	outcome                       it left unanswered      it is sent
//	ROLLED_BACK, FAILED           commit or rollback      rollback (to the previous releases)
//	DEPLOYED                      commit                  commit (not reached by the deadlines:
//	                                                      a commit not answered never ends DEPLOYED)
//	any                           arm, hooks              nothing (the disarm sent at the end;
//	                                                      what runs never changed)
//
// Its answer is noted in the history and clears Unanswered. Anything
// else a front-end runs that differs from its environment's record is
// drift, reported by the fleet's drift detection.

// outcomeCommand returns the command that brings agent a of d, which
// left a stage 2 command unanswered, to d's outcome; nil when there is
// none (yet). It is pure.
func outcomeCommand(d *model.Deployment, a *model.DeploymentAgent) *fleet.Command {
	if a.Unanswered != string(fleet.Commit) && a.Unanswered != string(fleet.Rollback) {
		return nil
	}
	switch {
	case d.State == model.RolledBack, d.State == model.Failed:
		return &fleet.Command{Kind: fleet.Rollback, ID: commandID(d, fleet.Rollback, a.Name), DeploymentID: d.ID}
	case d.State == model.Deployed && !d.RollingBack && a.Unanswered == string(fleet.Commit):
		return &fleet.Command{Kind: fleet.Commit, ID: commandID(d, fleet.Commit, a.Name), DeploymentID: d.ID,
			Releases: releases(d), KeepReleases: d.KeepReleases}
	}
	return nil
}

// outcomeCommands returns the commands that bring d's unanswered agents
// to its outcome.
func outcomeCommands(d *model.Deployment) []fleet.Outgoing {
	var out []fleet.Outgoing
	for i := range d.Agents {
		if c := outcomeCommand(d, &d.Agents[i]); c != nil {
			out = append(out, fleet.Outgoing{Agent: d.Agents[i].Name, Command: *c})
		}
	}
	return out
}

// applyOutcomeReport records in d the answer r of an agent to the
// command that brings it to the outcome (outcomeCommand), and returns
// what to note in the history ("" when r is not such an answer). It is
// pure.
func applyOutcomeReport(d *model.Deployment, r fleet.Report) string {
	i := slices.IndexFunc(d.Agents, func(a model.DeploymentAgent) bool { return a.Name == r.Agent })
	if i < 0 || !r.Outcome.Final() {
		return ""
	}
	a := &d.Agents[i]
	c := outcomeCommand(d, a)
	if c == nil || c.ID != r.CommandID {
		return ""
	}
	left := a.Unanswered
	a.Unanswered = ""
	if r.Outcome == fleet.CommandFailed {
		a.State, a.Error = model.AgentFailed, fmt.Sprintf("came back, but its %s to the outcome failed: %s", c.Kind, r.Error)
		return fmt.Sprintf("front-end %s, which had not answered %s, came back: its %s to the deployment's outcome FAILED: %s; check it", a.Name, left, c.Kind, r.Error)
	}
	if c.Kind == fleet.Rollback {
		a.State, a.Error = model.AgentRolledBack, ""
		return fmt.Sprintf("front-end %s, which had not answered %s, came back and was rolled back: it runs the releases that ran before %s, as the rest of the fleet", a.Name, left, d.ID)
	}
	a.State, a.Error = model.AgentActive, ""
	return fmt.Sprintf("front-end %s, which had not answered %s, came back and committed: it runs the releases of %s, as the rest of the fleet", a.Name, left, d.ID)
}
