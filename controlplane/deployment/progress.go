package deployment

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/cutover-dev/cutover/controlplane/fleet"
	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/pkg/errkind"
)

// This file holds the coalescing of PROGRESS reports (issue 15). A
// PROGRESS report of a stage or arm command only says how many bytes the
// agent has: no decision depends on it, and nothing is acknowledged on it.
// Writing the whole deployment (every agent) with an fsync for each one
// made a stage cost O(N²) in the number of agents. Such reports are kept
// in memory instead, the latest per agent, command and run, and stored in
// one write per deployment: at the latest DefaultProgressFlush after the
// first one (the timer in Run), or sooner by the next durable change of
// that deployment (update applies them first, so that a final report or a
// state change sees, and stores, the progress reported before it: nothing
// shown goes backwards). Watchers are told at the same pace.
//
// A commit's PROGRESS with Ready is not coalesced (it drives the held
// commit, hold.go), nor any final report. Progress not yet stored when the
// controller stops is lost: each agent's next report of the same run
// carries its whole count again (addRunBytes counts a run's growth).

// DefaultProgressFlush is the longest a coalesced PROGRESS report waits
// before it is stored and published, unless Config.ProgressFlush says
// otherwise.
const DefaultProgressFlush = 250 * time.Millisecond

// pendingProgress holds one deployment's coalesced reports, per agent: for
// each (command, run) the report with the most bytes (the latest for an
// agent without run ids), in the order they first came.
type pendingProgress map[string][]fleet.Report

// coalescable says whether r is a report no decision depends on: a
// PROGRESS, without Ready, of a stage or arm command.
func coalescable(r fleet.Report) bool {
	if r.Outcome != fleet.Progress || r.Ready {
		return false
	}
	kind := commandKind(r)
	return kind == fleet.Stage || kind == fleet.Arm
}

// commandKind is the kind of the command r answers, read from its id
// (commandID, rollbackCommandID), or "" if the id is not of that form.
func commandKind(r fleet.Report) fleet.CommandKind {
	rest, ok := strings.CutPrefix(r.CommandID, commandPrefix(r.DeploymentID, r.RollbackAttempt)+".")
	if !ok {
		return ""
	}
	kind, ok := strings.CutSuffix(rest, "."+r.Agent)
	if !ok {
		return ""
	}
	return fleet.CommandKind(kind)
}

// add keeps r in p, in place of an earlier report of the same command and
// run unless that one counted more bytes (reports of a run only grow: an
// older one that arrives late changes nothing, as in addRunBytes).
func (p pendingProgress) add(r fleet.Report) {
	rs := p[r.Agent]
	i := slices.IndexFunc(rs, func(x fleet.Report) bool { return x.CommandID == r.CommandID && x.Run == r.Run })
	switch {
	case i < 0:
		p[r.Agent] = append(rs, r)
	case r.Run == "" || r.TransferredBytes >= rs[i].TransferredBytes:
		rs[i] = r
	}
}

// apply records p's reports in d, as applyReport would have one by one,
// and says whether any changed d (stale ones change nothing).
func (p pendingProgress) apply(d *model.Deployment) bool {
	changed := false
	for _, rs := range p {
		for _, r := range rs {
			changed = applyReport(d, r) || changed
		}
	}
	return changed
}

// holdProgress keeps the coalescable report r for the next write of its
// deployment. Call with s.mu held.
func (s *Service) holdProgress(r fleet.Report) {
	id := r.DeploymentID
	p := s.progress[id]
	if p == nil {
		p = pendingProgress{}
		s.progress[id] = p
	}
	p.add(r)
	s.metrics.progressHeld.Inc()
}

// progressPending says whether reports wait to be stored.
func (s *Service) progressPending() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.progress) > 0
}

// FlushProgress stores the coalesced PROGRESS reports of every deployment,
// one write each, and tells the deployments' watchers. Run calls it from
// its timer and when it stops; tests call it instead of waiting.
func (s *Service) FlushProgress() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range slices.Sorted(maps.Keys(s.progress)) {
		d, err := s.flush(id, s.progress[id])
		delete(s.progress, id) // also when it failed: the agents' next reports say it again
		if err != nil {
			s.log.Warn("store the agents' progress", "deployment", id, "err", err)
			continue
		}
		if d != nil {
			s.metrics.progressFlushes.Inc()
			s.watchers.publishChange(Change{Deployment: d, Partial: true})
		}
	}
}

// flush stores p's reports in deployment id, in one transaction that
// reads the deployment's header and the record of each agent that
// reported, and writes the records that changed, and the header with its
// tally moved (storeHeld): its cost grows with the agents that reported,
// not with the fleet. It returns the header with the agents that changed
// in Agents (what watchers are told), nil if none did. Call with s.mu
// held.
func (s *Service) flush(id string, p pendingProgress) (*model.Deployment, error) {
	var d *model.Deployment
	err := s.store.Update(func(tx model.Tx) error {
		var err error
		if d, err = tx.DeploymentHeader(id); err != nil {
			return err
		}
		changed, err := s.storeHeld(tx, d, p)
		if err != nil {
			return err
		}
		if d.Agents = changed; len(changed) == 0 {
			return errUnchanged
		}
		if d.Tally == nil { // a header stored before tallies: the next whole write counts them
			return nil
		}
		return tx.PutDeploymentHeader(d)
	})
	if errors.Is(err, errUnchanged) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return d, nil
}

// agentAt returns the position of agent name in deployment id's Agents and
// its record, read in tx. Positions are kept in memory per deployment,
// found by one read of the whole deployment the first time, and checked
// against the record's name at each use (read again if it differs: agents
// were added or moved); NotFound if name is not an agent of id. Call with
// s.mu held.
func (s *Service) agentAt(tx model.Tx, id, name string) (int, *model.DeploymentAgent, error) {
	if i, ok := s.agentIndex[id][name]; ok {
		a, err := tx.DeploymentAgent(id, i)
		if err == nil && a.Name == name {
			return i, a, nil
		}
		if err != nil && !errors.Is(err, errkind.NotFound) {
			return 0, nil, err
		}
	}
	d, err := tx.Deployment(id)
	if err != nil {
		return 0, nil, err
	}
	index := make(map[string]int, len(d.Agents))
	for i, a := range d.Agents {
		index[a.Name] = i
	}
	s.agentIndex[id] = index
	i, ok := index[name]
	if !ok {
		return 0, nil, fmt.Errorf("agent %s is not one of deployment %s's: %w", name, id, errkind.NotFound)
	}
	return i, &d.Agents[i], nil
}
