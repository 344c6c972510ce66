package fleet

import (
	"time"

	"github.com/cutover-dev/cutover/controlplane/model"
)

// CommandKind says what a command asks an agent to do.
type CommandKind string

// The command kinds of the agent protocol (docs/architecture.md).
const (
	Stage    CommandKind = "stage"
	Arm      CommandKind = "arm"
	Commit   CommandKind = "commit"
	Disarm   CommandKind = "disarm"
	Hooks    CommandKind = "hooks"
	Rollback CommandKind = "rollback"
	Drop     CommandKind = "drop"
	// StopApp stops an application on purpose (Applications[0]); it
	// belongs to no deployment and is sent with Call (stop.go).
	StopApp CommandKind = "stop_app"
	// Finish lets a held commit go on (or, with Abort, go back); it is
	// not answered and not resent: the agent repeats its ready report
	// while it waits, and each is answered with a Finish.
	Finish CommandKind = "finish"
)

// ReleaseRef names one application's release.
type ReleaseRef struct {
	Application string
	ReleaseID   string
}

// Command is what the controller asks of one agent. Commands are idempotent:
// the fleet resends the ones not yet answered when the agent reconnects.
type Command struct {
	Kind         CommandKind
	ID           string
	DeploymentID string
	// RollbackAttempt (arm, commit, finish, disarm, hooks) is n > 0 for
	// a command of the n-th rollback by command of DeploymentID, which the
	// agent journals apart from the deployment's own activation; 0 for the
	// deployment's own.
	RollbackAttempt int
	// Releases for stage, arm, commit, hooks and drop.
	Releases []ReleaseRef
	// Applications for rollback (empty means all of the deployment's) and
	// stop_app (exactly one).
	Applications []string
	// VerifyOnly (arm): fail instead of staging a release not staged intact.
	VerifyOnly bool
	// Hooks to run (hooks; commit: the validate hooks).
	Hooks []model.HookRef
	// KeepReleases (commit): staged releases per application the agent
	// keeps after the swap; 0 means the agent's default.
	KeepReleases int32
	// Hold (commit): apps with run.listen report ready once their new
	// processes are healthy, and wait for Finish to stop the old ones.
	Hold bool
	// Abort (finish): stop the new processes instead; the commit fails,
	// swapped back.
	Abort bool
	// StageRate (stage, arm): the environment's cap on how fast the agent
	// writes what it stages, in bytes per second; 0: the agent's own.
	StageRate int64
	// Peers (stage, arm): agents the agent may fetch the releases' chunks from
	// before the controller, best first; filled by Fleet.Next.
	Peers []Peer
	// Swarm (stage): the agent's part in the swarm of the agents staging
	// the same releases; nil: none. Filled by Fleet.Next.
	Swarm *Swarm
}

// Outcome is the state of a command on an agent.
type Outcome int

// The outcomes an agent reports.
const (
	Progress Outcome = iota + 1
	Done
	CommandFailed
)

// Final says whether the outcome ends the command.
func (o Outcome) Final() bool { return o == Done || o == CommandFailed }

// Report is an agent's progress or result for one command.
type Report struct {
	// Agent is the name of the agent that sent it.
	Agent        string
	CommandID    string
	DeploymentID string
	// RollbackAttempt echoes the command's.
	RollbackAttempt int
	Outcome         Outcome
	Error           string
	ReleaseBytes    int64
	// TransferredBytes is what this run of the command received over the
	// wire so far (stage, arm); it counts from 0 in each run.
	TransferredBytes int64
	// Run identifies the run of the command on the agent: it changes when
	// the agent starts the command again. Empty from older agents.
	Run string
	// ReusedBytes is the part of ReleaseBytes the agent already held (stage
	// and arm, on DONE).
	ReusedBytes int64
	// SwapTime is when `current` was swapped (commit); zero if it was not.
	SwapTime    time.Time
	SwappedBack bool
	// Hooks are the hooks the command ran (hooks, commit).
	Hooks []model.HookResult
	// Ready (commit, PROGRESS): every new process is healthy; the agent
	// waits for Finish.
	Ready bool
	// Overlap (commit, DONE): how long both versions served.
	Overlap time.Duration
}

// Hello is what an agent says first on its session.
type Hello struct {
	Name         string
	Environment  string
	Labels       map[string]string
	Applications []model.AgentApplication
	// PeerAddress is where the agent serves chunks to its peers; empty:
	// it does not.
	PeerAddress string
}

// AgentView is an agent as the fleet knows it: its last record and whether
// its session is open.
type AgentView struct {
	model.Agent
	Connected bool
}

// Holds says whether the agent reported release id of app as staged or
// running.
func (a *AgentView) Holds(app, id string) bool {
	for _, x := range a.Applications {
		if x.Name != app {
			continue
		}
		if x.RunningReleaseID == id {
			return true
		}
		for _, s := range x.StagedReleaseIDs {
			if s == id {
				return true
			}
		}
	}
	return false
}
