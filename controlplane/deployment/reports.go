package deployment

import (
	"slices"
	"strconv"

	"github.com/cutover-dev/cutover/controlplane/fleet"
	"github.com/cutover-dev/cutover/controlplane/model"
)

// This file holds the commands a deployment sends and what the agents'
// reports on them change (rules.go holds the states and the steps).

// short returns the first 12 characters of an id, for messages.
func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// commandID is the id of the command of the given kind for one agent in d.
// It is the same every time, so a resent command is recognised.
func commandID(d *model.Deployment, kind fleet.CommandKind, agent string) string {
	return d.ID + "." + string(kind) + "." + agent
}

// rollbackCommandID is the id of the command of the given kind (a hook
// step: its name) for one agent in d's rollback by command. It is the
// same every time, and the same as before the attempt was a field of its
// own ("<id>~rollback.<n>.<kind>.<agent>"), so that a command an agent
// journaled by its id (hook runs) before an upgrade is recognised after
// it; it is only an id, from which nothing reads the attempt back.
func rollbackCommandID(d *model.Deployment, kind fleet.CommandKind, agent string) string {
	return commandPrefix(d.ID, d.RollbackAttempt) + "." + string(kind) + "." + agent
}

// commandPrefix is what the ids of the commands of deployment id's
// activation attempt (0: its own stage 2) start with. It is the form
// journalkey.Pack writes, kept here on purpose: Pack goes when no peer of
// the previous protocol revision remains, command ids journaled by agents
// stay.
func commandPrefix(id string, attempt int) string {
	if attempt == 0 {
		return id
	}
	return id + "~rollback." + strconv.Itoa(attempt)
}

// phase is the kind of command d waits for.
func phase(d *model.Deployment) fleet.CommandKind {
	switch {
	case d.State == model.Preparing, d.State == model.Prepared: // PREPARED: a late front-end staged in the background
		return fleet.Stage
	case d.State == model.Deployed && d.RollingBack: // the rollback command: arm, then commit
		kind, _ := stepKind(d.Step)
		return kind
	case d.State == model.Activating && d.RollingBack:
		return fleet.Rollback
	case needsSQL(d): // the SQL part runs; no command is out
		return ""
	case d.State == model.Activating:
		kind, _ := stepKind(d.Step)
		return kind
	}
	return ""
}

// applyReport records r in d's agent entry. It reports whether r was for
// the command d waits for from that agent; stale reports change nothing.
func applyReport(d *model.Deployment, r fleet.Report) bool {
	kind := phase(d)
	i := slices.IndexFunc(d.Agents, func(a model.DeploymentAgent) bool { return a.Name == r.Agent })
	if kind == "" || i < 0 || d.Agents[i].Command == "" || d.Agents[i].Command != r.CommandID {
		return false
	}
	a := &d.Agents[i]
	if r.Outcome.Final() {
		a.Command = ""
	}
	if r.Outcome == fleet.CommandFailed {
		a.Error = r.Error
		if a.Error == "" {
			a.Error = "the agent reported a failure without a reason"
		}
		a.StepError = a.Error
	}
	if r.Outcome.Final() {
		a.Hooks = append(a.Hooks, r.Hooks...)
	}
	switch kind {
	case fleet.Stage:
		a.ReleaseBytes = r.ReleaseBytes
		if r.Run == "" { // an agent without run ids: its count is the command's total
			a.TransferredBytes = r.TransferredBytes
		} else {
			addRunBytes(a, r)
		}
		a.State = map[fleet.Outcome]model.AgentState{fleet.Progress: model.AgentStaging, fleet.Done: model.AgentStaged, fleet.CommandFailed: model.AgentFailed}[r.Outcome]
		a.SavedCounted = a.SavedCounted || r.Outcome == fleet.Done
	case fleet.Arm, fleet.Commit:
		if d.State == model.Deployed {
			applyRollbackReport(a, kind, r)
			break
		}
		if kind == fleet.Commit {
			applyCommitReport(a, r)
			break
		}
		if r.ReleaseBytes > 0 {
			a.ReleaseBytes = r.ReleaseBytes
		}
		if r.Run == "" { // an agent without run ids: its count is the command's total
			a.TransferredBytes += r.TransferredBytes - a.ArmTransferredBytes
			a.ArmTransferredBytes = r.TransferredBytes
		} else {
			addRunBytes(a, r)
		}
		a.State = map[fleet.Outcome]model.AgentState{fleet.Progress: model.AgentStaging, fleet.Done: model.AgentArmed, fleet.CommandFailed: model.AgentFailed}[r.Outcome]
		a.SavedCounted = a.SavedCounted || r.Outcome == fleet.Done
	case fleet.Rollback:
		switch r.Outcome {
		case fleet.Done:
			a.State, a.SwappedBack = model.AgentRolledBack, true
		case fleet.CommandFailed:
			a.State, a.Error = model.AgentFailed, rollbackFailed+a.Error
		}
	}
	return true
}

// maxRuns bounds DeploymentAgent.Runs: an agent's command is run again
// only when the agent or the controller restarts or the connection is cut.
const maxRuns = 32

// addRunBytes adds to a.TransferredBytes what r's run of a stage or arm
// command received since the last report of that run that was applied.
// Each run counts from 0, so a command run again (the agent restarted, or
// the command was resent after its run ended) adds to what the earlier
// runs received instead of replacing it; a resend that the agent joined to
// the run still going on continues that run's count. A run's reports only
// grow: an older one that arrives late changes nothing.
func addRunBytes(a *model.DeploymentAgent, r fleet.Report) {
	i := slices.IndexFunc(a.Runs, func(x model.TransferRun) bool { return x.Run == r.Run })
	if i < 0 {
		if len(a.Runs) >= maxRuns { // the oldest run's bytes stay counted
			a.Runs = slices.Delete(a.Runs, 0, len(a.Runs)-maxRuns+1)
		}
		a.Runs = append(a.Runs, model.TransferRun{Run: r.Run})
		i = len(a.Runs) - 1
	}
	if n := r.TransferredBytes - a.Runs[i].Bytes; n > 0 {
		a.TransferredBytes += n
		a.Runs[i].Bytes = r.TransferredBytes
	}
}

// savedCounted says whether agent's reused bytes have been counted as saved
// in d: on its first DONE to stage, or to arm (one that joined after
// prepare stages there). Each agent's are counted once per deployment,
// however often it answers DONE (after a controller restart the commands
// not yet answered are sent again, and an agent that had finished answers
// DONE at once, reusing everything).
func savedCounted(d *model.Deployment, agent string) bool {
	i := slices.IndexFunc(d.Agents, func(a model.DeploymentAgent) bool { return a.Name == agent })
	return i >= 0 && d.Agents[i].SavedCounted
}

// applyCommitReport records the answer r to a stage 2 commit.
func applyCommitReport(a *model.DeploymentAgent, r fleet.Report) {
	if !r.SwapTime.IsZero() {
		a.SwapTime = r.SwapTime
	}
	a.Ready = a.Ready || (r.Outcome == fleet.Progress && r.Ready)
	if r.Overlap > 0 {
		a.Overlap = r.Overlap
	}
	switch {
	case r.Outcome == fleet.Done:
		a.State = model.AgentActive
	case r.Outcome == fleet.CommandFailed && r.SwappedBack:
		a.State, a.SwappedBack = model.AgentRolledBack, true
	case r.Outcome == fleet.CommandFailed:
		a.State = model.AgentFailed
	}
}
