package deployment

import (
	"errors"
	"maps"
	"slices"

	"github.com/cutover-dev/cutover/controlplane/fleet"
	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/pkg/errkind"
)

// This file holds the final reports decided without the other agents
// (issue 15). A final report (stage or arm DONE, a commit's answer, …)
// changes one agent; what follows depends on the others only through
// counts: whether any command is still unanswered, whether any agent
// failed, whether a held commit waits for anyone. The deployment's header
// keeps those counts (model.AgentTally), so such a report reads and writes
// the header and that agent's record, in one durable transaction, and
// watchers are told of that agent alone. Only the report that ends a step
// (the last answer, the first failure of stage 1, …), and every report
// outside the hot stages, go through update, which reads and writes the
// whole deployment: once per step, not once per agent.

// errWhole, returned in reportAlone's transaction, keeps nothing: the
// report needs the whole deployment (update).
var errWhole = errors.New("the report needs the whole deployment")

// settled says, from d's header and its Tally alone, after the report r
// was applied to one agent, that next(d) stays (step{}) and that
// finishes(d, r) sends nothing, so that the report can be stored without
// reading the other agents. False when it cannot tell: the caller then
// decides on the whole deployment. It is pure.
func settled(d *model.Deployment, r fleet.Report) bool {
	t := d.Tally
	if t == nil || t.Pending == 0 || needsSQL(d) || dbStep(d) != "" {
		return false
	}
	switch phase(d) {
	case fleet.Stage: // a failure ends stage 1 at once
		if d.State != model.Preparing || t.Failed > 0 {
			return false
		}
	case fleet.Arm, fleet.Hooks, fleet.Commit, fleet.Rollback: // every answer is awaited
		if d.State != model.Activating {
			return false
		}
	default:
		return false
	}
	if holds(d) { // finishes: nothing to send while someone is not ready and nobody failed
		failed := t.States[model.AgentFailed]+t.States[model.AgentRolledBack] > 0
		if (t.Waiting == 0 || failed) && (t.Unfinished > 0 || r.Ready) {
			return false
		}
	}
	return true
}

// reportAlone records the final report r, with the progress held for its
// deployment, reading and writing the deployment's header and the records
// of the agents concerned only, when that is enough to decide (settled).
// It returns the header with the agents that changed (what watchers are
// told), and whether r's reused bytes are to be counted as saved; nil if
// r changed nothing; errWhole, having kept nothing, when the whole
// deployment is needed: a header without a tally (stored before tallies
// were kept), a deployment neither PREPARING nor ACTIVATING, or a report
// that may end a step. Call with s.mu held.
func (s *Service) reportAlone(r fleet.Report) (*model.Deployment, bool, error) {
	id := r.DeploymentID
	held := s.progress[id]
	var d *model.Deployment
	saved := false
	err := s.store.Update(func(tx model.Tx) error {
		h, err := tx.DeploymentHeader(id)
		if err != nil {
			return err
		}
		if h.Tally == nil || (h.State != model.Preparing && h.State != model.Activating) {
			return errWhole
		}
		i, a, err := s.agentAt(tx, id, r.Agent)
		switch {
		case errors.Is(err, errkind.NotFound): // not an agent of d: stale, as applyReport would find
			return errUnchanged
		case err != nil:
			return err
		}
		before := *a
		h.Agents = []model.DeploymentAgent{*a} // what the rules read of the agents: this one
		pendingProgress{r.Agent: held[r.Agent]}.apply(h)
		counted := savedCounted(h, r.Agent)
		kind := phase(h)
		if !applyReport(h, r) {
			return errUnchanged
		}
		recordStepTime(h, r, kind, s.clock())
		h.Tally.Move(&before, &h.Agents[0])
		if !settled(h, r) {
			return errWhole
		}
		saved = !counted && savedCounted(h, r.Agent)
		mine := h.Agents[0]
		if err := tx.PutDeploymentAgent(id, i, &mine); err != nil {
			return err
		}
		others := maps.Clone(held)
		delete(others, r.Agent)
		changed, err := s.storeHeld(tx, h, others)
		if err != nil {
			return err
		}
		h.Agents = append([]model.DeploymentAgent{mine}, changed...)
		d = h
		return tx.PutDeploymentHeader(h)
	})
	if errors.Is(err, errUnchanged) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	delete(s.progress, id) // stored with this report
	return d, saved, nil
}

// storeHeld applies p's reports, in tx, to the records of their agents in
// deployment h (its header; h.Agents is used as scratch), writes the
// records that changed, moves h.Tally with them (when kept) and returns
// them, by name. The caller writes the header. Call with s.mu held.
func (s *Service) storeHeld(tx model.Tx, h *model.Deployment, p pendingProgress) ([]model.DeploymentAgent, error) {
	var changed []model.DeploymentAgent
	for _, name := range slices.Sorted(maps.Keys(p)) {
		i, a, err := s.agentAt(tx, h.ID, name)
		switch {
		case errors.Is(err, errkind.NotFound): // not an agent of d: stale, as applyReport would find
			continue
		case err != nil:
			return nil, err
		}
		before := *a
		h.Agents = []model.DeploymentAgent{*a} // what applyReport reads: the header and this agent
		if !(pendingProgress{name: p[name]}).apply(h) {
			continue
		}
		if err := tx.PutDeploymentAgent(h.ID, i, &h.Agents[0]); err != nil {
			return nil, err
		}
		if h.Tally != nil {
			h.Tally.Move(&before, &h.Agents[0])
		}
		changed = append(changed, h.Agents[0])
	}
	return changed, nil
}
