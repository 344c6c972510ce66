package deployment

import (
	"slices"

	"github.com/cutover-dev/cutover/controlplane/fleet"
	"github.com/cutover-dev/cutover/controlplane/model"
)

// This file holds the held commit: in stage 2's commit step, a front-end
// whose apps have run.listen starts the new processes beside the old ones
// on the same sockets, reports ready once they are healthy, and waits. When
// every front-end of the step is ready (or done: one without such apps
// does not wait), each is sent a finish and tells its old processes to
// stop: the fleet switches together, and no request is refused, since old
// and new serve side by side until then. When one fails its commit
// instead, the ready ones are sent a finish with abort: they stop their
// new processes, the old ones never stopped serving.

// holds says whether the commit of d's current step is held: stage 2's
// commit (not a rollback's).
func holds(d *model.Deployment) bool {
	return d.State == model.Activating && !d.RollingBack && d.Step == model.StepCommit
}

// AwaitsFinish says whether agent a of a deployment is ready in a held
// commit and waits for its finish: a.Ready stays set once the commit is
// answered (or the deployment ended), when nothing waits any more.
func AwaitsFinish(a model.DeploymentAgent) bool {
	return a.Ready && a.Command != ""
}

// finishes returns the finish commands that d's state calls for after the
// report r was applied: to every ready front-end not sent one yet once
// none is left to wait for or one failed, and again to r's agent when it
// repeats its ready report (it missed the first: a reconnection).
func finishes(d *model.Deployment, r fleet.Report) []fleet.Outgoing {
	if !holds(d) {
		return nil
	}
	failed := slices.ContainsFunc(d.Agents, func(a model.DeploymentAgent) bool {
		return a.State == model.AgentFailed || a.State == model.AgentRolledBack
	})
	waiting := slices.ContainsFunc(d.Agents, func(a model.DeploymentAgent) bool { return a.Command != "" && !a.Ready })
	if waiting && !failed {
		return nil
	}
	var out []fleet.Outgoing
	for i := range d.Agents {
		a := &d.Agents[i]
		if !AwaitsFinish(*a) || (a.FinishSent && !(r.Ready && r.Agent == a.Name)) {
			continue
		}
		a.FinishSent = true
		out = append(out, fleet.Outgoing{Agent: a.Name, Command: fleet.Command{Kind: fleet.Finish, ID: a.Command, DeploymentID: d.ID, Abort: failed}})
	}
	return out
}
