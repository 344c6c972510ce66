package model

// AgentTally counts a deployment's agents by what its rules look at, so
// that a report on one agent can be decided from the deployment's header
// and that agent's record, without reading the others (issue 15). It is
// derived from Agents: a store's PutDeployment stores the tally of the
// agents it writes, and whoever changes an agent through
// PutDeploymentAgent moves it (Move) and writes the header in the same
// transaction.
type AgentTally struct {
	// States counts the agents per state (states without agents absent).
	States map[AgentState]int `json:"states,omitempty"`
	// Pending counts the agents whose command is unanswered (Command set).
	Pending int `json:"pending,omitempty"`
	// Failed counts the agents whose error is the deployment's failure:
	// FAILED or ROLLED_BACK with an Error.
	Failed int `json:"failed,omitempty"`
	// Waiting counts the agents whose command is unanswered and that are
	// not ready in a held commit (Command set, Ready not).
	Waiting int `json:"waiting,omitempty"`
	// Unfinished counts the agents ready in a held commit, waiting for a
	// finish that was not sent yet (Ready, Command set, FinishSent not).
	Unfinished int `json:"unfinished,omitempty"`
}

// TallyAgents returns the tally of agents.
func TallyAgents(agents []DeploymentAgent) *AgentTally {
	t := &AgentTally{}
	for i := range agents {
		t.Add(&agents[i], 1)
	}
	return t
}

// Add counts a n times more (n = -1: once less).
func (t *AgentTally) Add(a *DeploymentAgent, n int) {
	if a.State != "" {
		if t.States == nil {
			t.States = map[AgentState]int{}
		}
		if t.States[a.State] += n; t.States[a.State] == 0 {
			delete(t.States, a.State)
		}
	}
	if a.Command != "" {
		t.Pending += n
		if a.Ready {
			if !a.FinishSent {
				t.Unfinished += n
			}
		} else {
			t.Waiting += n
		}
	}
	if a.Error != "" && (a.State == AgentFailed || a.State == AgentRolledBack) {
		t.Failed += n
	}
}

// Move counts to in place of from: an agent changed from one to the other.
func (t *AgentTally) Move(from, to *DeploymentAgent) {
	t.Add(from, -1)
	t.Add(to, 1)
}
