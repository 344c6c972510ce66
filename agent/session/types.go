package session

import (
	"time"

	"github.com/cutover-dev/cutover/agent/peer"

	"github.com/cutover-dev/cutover/agent/hook"
	"github.com/cutover-dev/cutover/pkg/appspec"
)

// Kind says what a command asks.
type Kind string

// The command kinds (docs/architecture.md).
const (
	KindStage    Kind = "stage"
	KindArm      Kind = "arm"
	KindCommit   Kind = "commit"
	KindDisarm   Kind = "disarm"
	KindHooks    Kind = "hooks"
	KindRollback Kind = "rollback"
	KindDrop     Kind = "drop"
	// KindStopApp stops an application on purpose (Applications[0]); it
	// belongs to no deployment.
	KindStopApp Kind = "stop_app"
	// KindFinish lets a held commit go on (or back, with Abort); it has
	// no report of its own.
	KindFinish Kind = "finish"
)

// Release names one application's release.
type Release struct {
	Application string
	ID          string
}

// Command is a command from the controller.
type Command struct {
	Kind       Kind
	ID         string
	Deployment string
	// RollbackAttempt (arm, commit, finish, disarm, hooks) is n > 0 for a
	// command of the n-th rollback by command of Deployment, an activation
	// of its own; 0 for the deployment's own.
	RollbackAttempt int
	// Releases for stage, arm, commit, hooks and drop.
	Releases []Release
	// Applications for rollback (empty means all of the deployment's) and
	// stop_app (exactly one).
	Applications []string
	// VerifyOnly (arm) fails instead of staging a release not staged intact.
	VerifyOnly bool
	// Hooks to run (hooks; commit: the validate hooks).
	Hooks []appspec.HookRef
	// KeepReleases (commit): staged releases per application to keep
	// after the swap; 0 means stage.DefaultKeepReleases.
	KeepReleases int
	// Hold (commit): report ready once the new processes of the apps with
	// run.listen are healthy, and wait for a finish before the old ones
	// are told to stop.
	Hold bool
	// Abort (finish): go back instead.
	Abort bool
	// StageRate (stage, arm) caps how fast the agent writes what it
	// stages, in bytes per second; 0: only the agent's own cap.
	StageRate int64
	// Peers (stage, arm): agents to fetch the releases' chunks from before the
	// controller, best first.
	Peers []peer.Peer
	// Swarm (stage): the agent's part in the swarm of the agents that
	// stage the same releases at once; nil: none.
	Swarm *peer.Swarm
	// Epoch is the epoch of the controller that sent the command (see
	// Fence); 0 from a controller that is not elected.
	Epoch uint64
}

// Outcome is where a command is.
type Outcome int

// The outcomes.
const (
	Progress Outcome = iota + 1
	Done
	Failed
)

// Report is progress or the result of a command.
type Report struct {
	CommandID  string
	Deployment string
	// RollbackAttempt echoes the command's.
	RollbackAttempt int
	Outcome         Outcome
	Error           string
	ReleaseBytes    int64
	// TransferredBytes is what this run of the command received over the
	// wire so far (stage, arm).
	TransferredBytes int64
	// Run identifies this run of the command; the Session sets it (a new
	// one each time it starts the command).
	Run string
	// ReusedBytes is the part of ReleaseBytes the agent already held (stage, DONE).
	ReusedBytes int64
	// SwapTime is when `current` was swapped (commit); zero if it was not.
	SwapTime    time.Time
	SwappedBack bool
	// Hooks are the hooks the command ran (hooks, commit), in order.
	Hooks []hook.Result
	// Ready (commit, PROGRESS): the held commit's new processes are
	// healthy; it waits for a finish. Sent at once, never throttled.
	Ready bool
	// Overlap (commit, DONE): how long both versions served.
	Overlap time.Duration
}

// AppStatus is what the agent runs and holds of one application.
type AppStatus struct {
	Name    string
	Running string
	Staged  []string
}
