package deployment

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/cutover-dev/cutover/controlplane/fleet"
	"github.com/cutover-dev/cutover/controlplane/model"
)

// Front-ends that were not there at prepare.
//
// Stage 1 stages on the agents connected when it starts; the others of the
// environment are named when it ends (preparedSummary: "PREPARED on 2 of 3
// front-ends; fe-3 not connected since …"). A front-end of the environment
// that connects while a deployment is PREPARED, and lacks its releases, is
// staged at once, in the background (stageJoined): it joins d.Agents with a
// stage command, its reports are applied as in stage 1 (phase is stage),
// and its end is noted in the history; the state stays PREPARED whatever
// it answers (a failure is noted, and continue's arm stages it again, or
// require_prepared refuses naming it). So its bytes move before
// activate_time, not inside the window.

// preparedSummary says on how many of the environment's front-ends d is
// staged, and what keeps the others: envAgents are the agents the
// controller knows in d's environment (removed ones are not).
func preparedSummary(d *model.Deployment, envAgents []*model.Agent) string {
	names := map[string]bool{}
	for _, a := range d.Agents {
		names[a.Name] = true
	}
	for _, a := range envAgents {
		names[a.Name] = true
	}
	staged := 0
	var others []string
	for _, n := range slices.Sorted(maps.Keys(names)) {
		i := slices.IndexFunc(d.Agents, func(a model.DeploymentAgent) bool { return a.Name == n })
		switch {
		case i >= 0 && d.Agents[i].State == model.AgentStaged:
			staged++
		case i >= 0 && d.Agents[i].State == model.AgentFailed:
			others = append(others, fmt.Sprintf("%s failed: %s", n, d.Agents[i].Error))
		case i >= 0:
			others = append(others, n+" staging in the background")
		default:
			j := slices.IndexFunc(envAgents, func(a *model.Agent) bool { return a.Name == n })
			since := "it connected"
			if !envAgents[j].LastSeen.IsZero() {
				since = utc(envAgents[j].LastSeen)
			}
			others = append(others, fmt.Sprintf("%s not connected since %s", n, since))
		}
	}
	msg := fmt.Sprintf("PREPARED on %d of %d front-ends", staged, len(names))
	if len(others) == 0 {
		return msg + ": every one has the releases staged"
	}
	return msg + "; " + strings.Join(others, "; ") + " (a front-end that connects while PREPARED is staged at once, in the background)"
}

// envAgents returns the agents of env that the controller knows.
func envAgents(tx model.Tx, env string) ([]*model.Agent, error) {
	all, err := tx.Agents()
	return slices.DeleteFunc(all, func(a *model.Agent) bool { return a.Environment != env }), err
}

// lateStage decides what a front-end that just connected (v) needs for
// PREPARED deployment d: its stage command resent (one in the background
// that was not answered), a new one (it lacks a release), or nothing. It
// records the agent in d (joining it, or resetting a failed entry) and
// returns the command to send, if any, and the note for the history ("" for
// none).
func lateStage(d *model.Deployment, v fleet.AgentView) (*fleet.Command, string) {
	i := slices.IndexFunc(d.Agents, func(a model.DeploymentAgent) bool { return a.Name == v.Name })
	if i >= 0 && d.Agents[i].Command != "" { // staging in the background: resend
		c := stageCommand(d, d.Agents[i].Command)
		return &c, ""
	}
	if holdsAll(d, v) {
		if i < 0 {
			d.Agents = append(d.Agents, model.DeploymentAgent{Name: v.Name, State: model.AgentStaged})
			return nil, fmt.Sprintf("front-end %s connected; it holds the releases already", v.Name)
		}
		return nil, ""
	}
	if i < 0 {
		d.Agents = append(d.Agents, model.DeploymentAgent{Name: v.Name})
		i = len(d.Agents) - 1
	}
	a := &d.Agents[i]
	a.State, a.Error, a.Command = model.AgentPending, "", commandID(d, fleet.Stage, v.Name)
	c := stageCommand(d, a.Command)
	return &c,
		fmt.Sprintf("front-end %s connected while PREPARED and lacks the releases: staging them there now, in the background", v.Name)
}

// stageCommand is d's stage command of id, with d's stage_rate.
func stageCommand(d *model.Deployment, id string) fleet.Command {
	return fleet.Command{Kind: fleet.Stage, ID: id, DeploymentID: d.ID, Releases: releases(d), StageRate: d.StageRate}
}

// stageJoined stages, in the background, the PREPARED deployments of the
// agents named (they just connected) on those that lack their releases.
func (s *Service) stageJoined(names []string) {
	if len(names) == 0 {
		return
	}
	prepared, err := s.prepared()
	if err != nil {
		s.log.Error("stage on the front-ends that connected: read deployments", "err", err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range prepared {
		var views []fleet.AgentView
		for _, v := range s.fleet.Connected(p.Environment) {
			if slices.Contains(names, v.Name) {
				views = append(views, v)
			}
		}
		if len(views) == 0 {
			continue
		}
		var out []fleet.Outgoing
		d, err := s.update(p.ID, func(tx model.Tx, d *model.Deployment) error {
			if d.State != model.Prepared || !built(d) {
				return errUnchanged
			}
			out = nil
			noted := false
			for _, v := range views {
				cmd, msg := lateStage(d, v)
				if cmd != nil {
					out = append(out, fleet.Outgoing{Agent: v.Name, Command: *cmd})
				}
				if msg != "" {
					note(d, s.clock(), ControllerActor, msg)
					noted = true
				}
			}
			if !noted {
				return errUnchanged
			}
			return nil
		})
		if err != nil {
			s.log.Error("stage on the front-ends that connected", "deployment", p.ID, "environment", p.Environment, "err", err)
			continue
		}
		s.send(out) // resends too, when nothing was noted (d is nil then)
		if d != nil {
			s.log.Info("front-ends that connected while PREPARED", "deployment", d.ID, "environment", d.Environment, "agents", names)
			s.watchers.publish(d)
		}
	}
}

// lateReport is the note for a final answer of agent to a stage in the
// background of PREPARED deployment d, once applied; envAgents as for
// preparedSummary.
func lateReport(d *model.Deployment, agent string, envAgents []*model.Agent) string {
	i := slices.IndexFunc(d.Agents, func(a model.DeploymentAgent) bool { return a.Name == agent })
	if i < 0 {
		return ""
	}
	a := d.Agents[i]
	switch a.State {
	case model.AgentStaged:
		return fmt.Sprintf("front-end %s staged in the background (%d bytes transferred); %s", agent, a.TransferredBytes, preparedSummary(d, envAgents))
	case model.AgentFailed:
		return fmt.Sprintf("staging on front-end %s failed: %s; continue stages it again inside the window (or, with require_prepared, refuses); %s", agent, a.Error, preparedSummary(d, envAgents))
	}
	return ""
}
