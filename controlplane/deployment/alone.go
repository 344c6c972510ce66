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

// errWhole, from reportAloneTx before it wrote anything: the report
// needs the whole deployment (update).
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

// maxReportBatch bounds the reports stored in one transaction
// (storeAlone): on etcd, each writes an agents' group and a header, within
// --max-txn-ops (128 by default) with the transaction's own key.
const maxReportBatch = 48

// stored is a report that storeAlone stored: its deployment's header with
// the agents that changed (what watchers are told), and whether the
// report's reused bytes are to be counted as saved.
type stored struct {
	r     fleet.Report
	d     *model.Deployment
	saved bool
}

// storeAlone takes rs in order, as handleReport would one by one, while
// each is decided without its deployment's other agents: it holds the
// PROGRESS that coalesce (progress.go), and stores the others, each with
// the progress held for its deployment, reading and writing the headers
// and the records of the agents concerned only (reportAloneTx), all in one
// durable transaction: one commit (one fsync) for a run of reports that
// arrived together. Nothing that follows them (watchers, the saved bytes)
// happens before that commit. It stops at the first report that needs
// its whole deployment, and returns how many it took; errs receives the
// error of each it took (a deployment not found; the transaction's
// failure for every one it stored). Call with s.mu held.
func (s *Service) storeAlone(rs []fleet.Report, errs []error) int {
	n := 0
	for ; n < len(rs) && coalescable(rs[n]); n++ { // no transaction for these alone
		s.holdProgress(rs[n])
	}
	if n == len(rs) {
		return n
	}
	var done []stored
	var at []int // done[i] is rs[at[i]]
	err := s.store.Update(func(tx model.Tx) error {
		for ; n < len(rs); n++ {
			r := rs[n]
			if coalescable(r) { // stored by the next write of the deployment
				s.holdProgress(r)
				continue
			}
			d, saved, err := s.reportAloneTx(tx, r, s.progress[r.DeploymentID])
			switch {
			case errors.Is(err, errWhole):
				return nil
			case errors.Is(err, errUnchanged):
				continue
			case errors.Is(err, errkind.NotFound): // its header, read before anything was written
				errs[n] = err
				continue
			case err != nil:
				return err
			}
			delete(s.progress, r.DeploymentID) // stored with this report
			done, at = append(done, stored{r: r, d: d, saved: saved}), append(at, n)
		}
		return nil
	})
	if err != nil {
		for _, i := range at {
			errs[i] = err
		}
		return n
	}
	for _, st := range done {
		if st.saved {
			s.saved(st.d.Environment, st.r.ReusedBytes)
		}
		s.watchers.publishChange(Change{Deployment: st.d, Partial: true})
	}
	return n
}

// reportAloneTx records, in tx, the final report r, with held (the
// progress held for its deployment), reading and writing the deployment's
// header and the records of the agents concerned only, when that is
// enough to decide (settled). It returns the header with the agents that
// changed, and whether r's reused bytes are to be counted as saved.
// Before it writes anything it may return: errUnchanged (r changed
// nothing), errWhole when the whole deployment is needed (a header
// without a tally, stored before tallies were kept; a deployment neither
// PREPARING nor ACTIVATING; a report that may end a step), or the error
// of reading the header (NotFound). After, only the store's errors. Call
// with s.mu held.
func (s *Service) reportAloneTx(tx model.Tx, r fleet.Report, held pendingProgress) (*model.Deployment, bool, error) {
	id := r.DeploymentID
	h, err := tx.DeploymentHeader(id)
	if err != nil {
		return nil, false, err
	}
	if h.Tally == nil || (h.State != model.Preparing && h.State != model.Activating) {
		return nil, false, errWhole
	}
	i, a, err := s.agentAt(tx, id, r.Agent)
	switch {
	case errors.Is(err, errkind.NotFound): // not an agent of d: stale, as applyReport would find
		return nil, false, errUnchanged
	case err != nil:
		return nil, false, err
	}
	before := *a
	h.Agents = []model.DeploymentAgent{*a} // what the rules read of the agents: this one
	pendingProgress{r.Agent: held[r.Agent]}.apply(h)
	counted := savedCounted(h, r.Agent)
	kind := phase(h)
	if !applyReport(h, r) {
		return nil, false, errUnchanged
	}
	recordStepTime(h, r, kind, s.clock())
	h.Tally.Move(&before, &h.Agents[0])
	if !settled(h, r) {
		return nil, false, errWhole
	}
	saved := !counted && savedCounted(h, r.Agent)
	mine := h.Agents[0]
	if err := tx.PutDeploymentAgent(id, i, &mine); err != nil {
		return nil, false, err
	}
	others := maps.Clone(held)
	delete(others, r.Agent)
	changed, err := s.storeHeld(tx, h, others)
	if err != nil {
		return nil, false, err
	}
	h.Agents = append([]model.DeploymentAgent{mine}, changed...)
	return h, saved, tx.PutDeploymentHeader(h)
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
