package model

import (
	"slices"
	"time"
)

// DeploymentState is where a deployment is in its life. The values are the
// suffixes of the public DeploymentState enum.
type DeploymentState string

// The deployment states.
const (
	Planned    DeploymentState = "PLANNED"
	Preparing  DeploymentState = "PREPARING"
	Prepared   DeploymentState = "PREPARED"
	Activating DeploymentState = "ACTIVATING"
	Deployed   DeploymentState = "DEPLOYED"
	Failed     DeploymentState = "FAILED"
	Aborted    DeploymentState = "ABORTED"
	Expired    DeploymentState = "EXPIRED"
	RolledBack DeploymentState = "ROLLED_BACK"
)

// FinalStates are the states in which a deployment's work is over. Only
// the controller's own rules move a deployment out of one (a DEPLOYED one
// may still be rolled back by command).
var FinalStates = []DeploymentState{Deployed, Failed, Aborted, Expired, RolledBack}

// Final says whether s is a final state: the deployment waits for nothing.
func (s DeploymentState) Final() bool { return slices.Contains(FinalStates, s) }

// AgentState is where one front-end is in a deployment.
type AgentState string

// The per-agent states of a deployment.
const (
	AgentPending    AgentState = "PENDING"
	AgentStaging    AgentState = "STAGING"
	AgentStaged     AgentState = "STAGED"
	AgentActivating AgentState = "ACTIVATING"
	AgentActive     AgentState = "ACTIVE"
	AgentFailed     AgentState = "FAILED"
	AgentRolledBack AgentState = "ROLLED_BACK"
	// AgentArmed: stage 2's arm step is done: releases verified, swap prepared.
	AgentArmed AgentState = "ARMED"
)

// Environment is a named deployment target and its settings.
type Environment struct {
	Name            string        `json:"name"`
	TwoStage        bool          `json:"two_stage,omitempty"`
	Database        Database      `json:"database"`
	Windows         []string      `json:"windows,omitempty"`
	PreparedTTL     time.Duration `json:"prepared_ttl,omitempty"`
	RequireApproval bool          `json:"require_approval,omitempty"`
	// RequirePrepared: every continue refuses to stage on front-ends that
	// lack the releases (as continue --require-prepared).
	RequirePrepared bool  `json:"require_prepared,omitempty"`
	KeepReleases    int32 `json:"keep_releases,omitempty"`
	// StageRate caps, in bytes per second, how fast each agent writes what
	// it stages; sent with the stage and arm commands (0: no cap but the
	// agents' own --stage-rate).
	StageRate int64 `json:"stage_rate,omitempty"`
	// PeersDisabled: the environment's stage commands name no peers and
	// no swarm; its agents fetch from the controller only.
	PeersDisabled bool `json:"peers_disabled,omitempty"`
	// Deadlines bound each step of stage 2 (zero fields: the defaults of
	// controlplane/deployment).
	Deadlines        Stage2Deadlines            `json:"deadlines,omitzero"`
	DeployedVersions map[string]DeployedVersion `json:"deployed_versions,omitempty"`
	CreateTime       time.Time                  `json:"create_time"`
	UpdateTime       time.Time                  `json:"update_time"`
}

// Database says how the controller reaches an environment's database.
type Database struct {
	Driver           string        `json:"driver,omitempty"`
	DSN              string        `json:"dsn,omitempty"`
	StatementTimeout time.Duration `json:"statement_timeout,omitempty"`
	LockTimeout      time.Duration `json:"lock_timeout,omitempty"`
	// ShadowDSN (PostgreSQL) names a server and a role that may CREATE
	// DATABASE, where prepare creates its scratch databases to check the
	// SQL script on; "" means the server and role of DSN. It may hold a
	// password.
	ShadowDSN string `json:"shadow_dsn,omitempty"`
}

// DeployedVersion is what runs in an environment for one application.
type DeployedVersion struct {
	VersionLabel string    `json:"version_label"`
	ReleaseID    string    `json:"release_id"`
	DeploymentID string    `json:"deployment_id"`
	DeployTime   time.Time `json:"deploy_time"`
}

// Application is a registered source directory.
type Application struct {
	Name       string    `json:"name"`
	SourceDir  string    `json:"source_dir"`
	CreateTime time.Time `json:"create_time"`
	UpdateTime time.Time `json:"update_time"`
}

// Release is the metadata of one build's output. Its manifest bytes are
// stored beside it.
type Release struct {
	ID          string    `json:"id"`
	Application string    `json:"application"`
	SizeBytes   int64     `json:"size_bytes"`
	FileCount   int64     `json:"file_count"`
	ChunkCount  int64     `json:"chunk_count"`
	CreateTime  time.Time `json:"create_time"`
}

// Deployment brings one environment to given versions of applications.
type Deployment struct {
	ID           string                  `json:"id"`
	Environment  string                  `json:"environment"`
	Applications []DeploymentApplication `json:"applications"`
	State        DeploymentState         `json:"state"`
	Error        string                  `json:"error,omitempty"`
	SingleStage  bool                    `json:"single_stage,omitempty"`
	RollingBack  bool                    `json:"rolling_back,omitempty"`
	// RollbackAttempt is n > 0 once the rollback by command was started:
	// the agents journal the activation of its n-th attempt (its arm and
	// commit, sent with the attempt) apart from the deployment's own. 0:
	// no rollback by command was started. (Stored by schema 5 as the
	// packed "rollback_key"; controlplane/store's migration reads it.)
	RollbackAttempt int `json:"rollback_attempt,omitempty"`
	// RollbackError is why the running rollback by command failed, while
	// its after_activate hooks run; it becomes Error when they have
	// answered (Error stays empty until the rollback has ended, so that
	// whoever follows it waits for the end).
	RollbackError string `json:"rollback_error,omitempty"`
	// RollbackSpread is the time between the first and the last agent's
	// swap back by the rollback command.
	RollbackSpread   time.Duration     `json:"rollback_spread,omitempty"`
	CreateTime       time.Time         `json:"create_time"`
	PrepareTime      time.Time         `json:"prepare_time"`
	PreparedTime     time.Time         `json:"prepared_time"`
	ActivateTime     time.Time         `json:"activate_time"`
	FinishTime       time.Time         `json:"finish_time"`
	ExpireTime       time.Time         `json:"expire_time"`
	Agents           []DeploymentAgent `json:"agents,omitempty"`
	ActivationSpread time.Duration     `json:"activation_spread,omitempty"`
	BuildDuration    time.Duration     `json:"build_duration,omitempty"`
	TransferDuration time.Duration     `json:"transfer_duration,omitempty"`
	SQLDuration      time.Duration     `json:"sql_duration,omitempty"`
	// SQLPending is how many migrations the deployment's SQL plan applies
	// (set when prepare stored the plan). 0: stage 2 runs no SQL.
	SQLPending int `json:"sql_pending,omitempty"`
	// SQLDone is set, in the same commit as the activate commands, once
	// stage 2's SQL part succeeded (or there was none): activate is never
	// sent before it, and a restarted controller never runs the SQL again.
	SQLDone      bool          `json:"sql_done,omitempty"`
	SwapDuration time.Duration `json:"swap_duration,omitempty"`
	History      []Transition  `json:"history,omitempty"`
	// PreparedTTL is the environment's prepared_ttl when the deployment
	// became PREPARED (ExpireTime was PreparedTime + PreparedTTL then).
	PreparedTTL time.Duration `json:"prepared_ttl,omitempty"`
	// ScheduledTime is when the controller starts stage 2 of a PREPARED
	// deployment (continue at the window); zero when not scheduled.
	ScheduledTime time.Time `json:"scheduled_time,omitzero"`
	// PredictedStage2 is how long stage 2 is expected to take, from the
	// environment's earlier stage 2 runs; set when it becomes PREPARED.
	PredictedStage2 time.Duration `json:"predicted_stage2,omitempty"`
	// Prediction is the latest prediction of stage 2, with its parts
	// (PredictedStage2 is its total); kept once stage 2 started.
	Prediction *Prediction `json:"prediction,omitempty"`
	// Approval is set once the deployment is approved.
	Approval *Approval `json:"approval,omitempty"`
	// Step is where an ACTIVATING deployment is in stage 2 (empty before
	// stage 2, and for records older than the arm/commit steps: commit).
	Step Stage2Step `json:"step,omitempty"`
	// StepTime is when Step began.
	StepTime time.Time `json:"step_time,omitzero"`
	// Ending is the final state a stage 2 moves to once its after_activate
	// hooks ran (Error holds the reason of a failure); for a rollback by
	// command, ROLLED_BACK, or DEPLOYED when it failed (RollbackError holds
	// the reason); empty otherwise.
	Ending DeploymentState `json:"ending,omitempty"`
	// Committed is set, with the commit commands, once any agent may swap.
	Committed bool `json:"committed,omitempty"`
	// RequirePrepared: continue refused to stage on agents lacking the releases.
	RequirePrepared bool `json:"require_prepared,omitempty"`
	// KeepReleases is the environment's keep_releases when stage 2 began,
	// sent to the agents with commit (0: their default).
	KeepReleases int32 `json:"keep_releases,omitempty"`
	// StageRate is the environment's stage_rate when the deployment began
	// (stage 1, or stage 2 without it), sent to the agents with stage and
	// arm (0: no cap but theirs).
	StageRate int64 `json:"stage_rate,omitempty"`
	// StartForced: a single-stage start was forced (with a reason) past the
	// deployment windows, which are then not checked again before stage 2.
	StartForced bool `json:"start_forced,omitempty"`
	// ArmDuration is how long stage 2's arm step took.
	ArmDuration time.Duration `json:"arm_duration,omitempty"`
	// HooksDuration is how long the before_activate and after_activate steps took.
	HooksDuration time.Duration `json:"hooks_duration,omitempty"`
	// Package is the package step's outcome; nil when it did not run.
	Package *PackageResult `json:"package,omitempty"`
	// Reconcile marks a reconcile deployment (cutoverctl env reconcile):
	// stage 2 only, on the drifted front-ends, of the releases the
	// environment records; it leaves those records as they are, and a
	// failure before any swap ends it FAILED (never PREPARED again).
	Reconcile bool `json:"reconcile,omitempty"`
	// Deadlines are the environment's stage 2 deadlines when stage 2
	// began, defaults filled in (zero in records older than them: the
	// defaults apply).
	Deadlines Stage2Deadlines `json:"deadlines,omitzero"`

	// The database phases (controlplane/deployment/sqlphases.go): the
	// contract phase of stage 2, and the undoing of what the SQL applied.

	// ContractPending is how many migrations the SQL plan's contract phase
	// applies (set when prepare stored the plan); 0: there is none.
	ContractPending int `json:"contract_pending,omitempty"`
	// ContractDone is set once the contract phase committed.
	ContractDone bool `json:"contract_done,omitempty"`
	// ContractDuration is how long the contract phase took (its last run).
	ContractDuration time.Duration `json:"contract_duration,omitempty"`
	// ContractError says why the contract phase stopped (what committed,
	// what did not); the deployment waits in stage 2's contract step for
	// continue, which resumes it. Empty while it runs or once done.
	ContractError string `json:"contract_error,omitempty"`
	// ContractRuns counts the starts of the contract phase: each after the
	// first resumes (migrate.Resume).
	ContractRuns int `json:"contract_runs,omitempty"`
	// RollbackDatabase: the running (or last) rollback by command also
	// undoes the database (rollback --with-database).
	RollbackDatabase bool `json:"rollback_database,omitempty"`
	// RollbackForced: that rollback was forced past irreversible
	// migrations (--force --reason), which stay applied.
	RollbackForced bool `json:"rollback_forced,omitempty"`
	// SchemaUndone lists the phases whose down plans ran and committed:
	// "contract", "expand".
	SchemaUndone []string `json:"schema_undone,omitempty"`
	// DatabaseOutcome says what a rollback (stage 2's, or by command with
	// the database) did to the database, or why it left it as it was.
	DatabaseOutcome string `json:"database_outcome,omitempty"`

	// Tally counts Agents by what the deployment's rules look at (issue
	// 15): kept in its header, so that a report on one agent is decided
	// without reading the others. A whole read (Deployment) and a whole
	// write (PutDeployment) derive it from Agents; nil in a header stored
	// before it was kept (DeploymentHeader): not known.
	Tally *AgentTally `json:"tally,omitempty"`
}

// Stage2Deadlines bound the steps of stage 2: Arm the arm step, Hooks each
// of the before_activate and after_activate steps, Commit the commit step
// and the swap-back that follows a failed commit. Zero: the default.
type Stage2Deadlines struct {
	Arm    time.Duration `json:"arm,omitempty"`
	Hooks  time.Duration `json:"hooks,omitempty"`
	Commit time.Duration `json:"commit,omitempty"`
}

// Prediction is how long stage 2 is expected to take, part by part.
type Prediction struct {
	Total time.Duration    `json:"total"`
	Parts []PredictionPart `json:"parts,omitempty"`
	Time  time.Time        `json:"time"`
}

// PredictionPart is one part of a Prediction.
type PredictionPart struct {
	Name     string        `json:"name"`
	Duration time.Duration `json:"duration"`
	Basis    string        `json:"basis,omitempty"`
}

// Stage2Step is a step of stage 2, in order: arm, before_activate, sql,
// commit, contract (after a commit that succeeded) or undo_expand (after
// one that swapped back), after_activate. A rollback by command with the
// database runs undo_contract before its arm, and undo_expand after its
// commit.
type Stage2Step string

// The steps of stage 2.
const (
	StepArm    Stage2Step = "arm"
	StepBefore Stage2Step = "before_activate"
	StepSQL    Stage2Step = "sql"
	StepCommit Stage2Step = "commit"
	StepAfter  Stage2Step = "after_activate"
	// StepContract runs the contract phase of the SQL.
	StepContract Stage2Step = "contract"
	// StepUndoContract runs the down plan of the contract phase.
	StepUndoContract Stage2Step = "undo_contract"
	// StepUndoExpand runs the down plan of the expand phase.
	StepUndoExpand Stage2Step = "undo_expand"
)

// HookRef names a hook of an application's spec: Kind is
// "before_activate", "validate" or "after_activate".
type HookRef struct {
	Application string `json:"application"`
	Kind        string `json:"kind"`
	Index       int    `json:"index"`
}

// HookResult is how one hook ran on one agent.
type HookResult struct {
	HookRef
	Command  string        `json:"command"`
	ExitCode int           `json:"exit_code"`
	Duration time.Duration `json:"duration"`
	Output   string        `json:"output,omitempty"`
	Error    string        `json:"error,omitempty"`
}

// PackageResult is the outcome of the package step.
type PackageResult struct {
	Application string        `json:"application"`
	Ran         bool          `json:"ran"`
	Changed     []string      `json:"changed,omitempty"`
	SizeBytes   int64         `json:"size_bytes,omitempty"`
	Duration    time.Duration `json:"duration,omitempty"`
	Output      string        `json:"output,omitempty"`
	Error       string        `json:"error,omitempty"`
	// Pending: the step is to run (or runs); the deployment is DEPLOYED.
	Pending bool `json:"pending,omitempty"`
	// File is the produced file's name (base of package.output), kept in
	// the controller's package directory under the deployment id.
	File string `json:"file,omitempty"`
}

// Approval records who approved a deployment, and when.
type Approval struct {
	Actor   string    `json:"actor"`
	Time    time.Time `json:"time"`
	Comment string    `json:"comment,omitempty"`
}

// DeploymentApplication is one application of a deployment.
type DeploymentApplication struct {
	Name              string `json:"name"`
	VersionLabel      string `json:"version_label,omitempty"`
	ReleaseID         string `json:"release_id,omitempty"`
	PreviousReleaseID string `json:"previous_release_id,omitempty"`
	// Previous is what the environment recorded for the application before
	// this deployment was DEPLOYED: a rollback restores it. Nil when nothing
	// ran before (or for deployments recorded before it was kept).
	Previous *DeployedVersion `json:"previous,omitempty"`
}

// DeploymentAgent is one front-end's progress in a deployment. Command is
// the id of the command sent to it that has not been answered yet (empty
// when none): the controller resends it after a restart or a reconnect.
type DeploymentAgent struct {
	Name             string     `json:"name"`
	State            AgentState `json:"state"`
	ReleaseBytes     int64      `json:"release_bytes,omitempty"`
	TransferredBytes int64      `json:"transferred_bytes,omitempty"`
	Error            string     `json:"error,omitempty"`
	SwapTime         time.Time  `json:"swap_time"`
	// Overlap is how long both versions served on it during its commit
	// (apps with run.listen); zero when none overlapped.
	Overlap time.Duration `json:"overlap,omitzero"`
	// Ready says its held commit reported every new process healthy: it
	// waits for the finish (stage 2's commit step only).
	Ready bool `json:"ready,omitempty"`
	// FinishSent says the finish of its held commit was sent.
	FinishSent  bool   `json:"finish_sent,omitempty"`
	SwappedBack bool   `json:"swapped_back,omitempty"`
	Command     string `json:"command,omitempty"`
	// Hooks planned for this agent in stage 2, all kinds, in run order.
	Plan []HookRef `json:"plan,omitempty"`
	// Hooks are the results of the hooks it ran, in order.
	Hooks []HookResult `json:"hooks,omitempty"`
	// BeforeRan: it was sent before_activate hooks (so after_activate runs
	// there even when stage 2, or a rollback by command, fails).
	BeforeRan bool `json:"before_ran,omitempty"`
	// RollbackPlan holds the hooks it runs in the rollback by command that
	// runs now (or ran last): the hooks of the releases the rollback goes
	// back to, planned when it was requested, in run order.
	RollbackPlan []HookRef `json:"rollback_plan,omitempty"`
	// ArmTransferredBytes is what it received for the arm command (part of
	// TransferredBytes), from an agent that reports no run ids.
	ArmTransferredBytes int64 `json:"arm_transferred_bytes,omitempty"`
	// Runs are the runs of its stage and arm commands that reported a run
	// id, with what each received: TransferredBytes is their sum (plus,
	// before the agent reported run ids, what it reported without one).
	// Only the latest runs are kept (controlplane/deployment bounds them);
	// a forgotten run's bytes stay in TransferredBytes.
	Runs []TransferRun `json:"runs,omitempty"`
	// ArmDuration is how long its arm took in stage 2 (from the step's
	// start to its answer); CommitDuration the same for its commit.
	ArmDuration    time.Duration `json:"arm_duration,omitempty"`
	CommitDuration time.Duration `json:"commit_duration,omitempty"`
	// StepError is its error in the current step of stage 2.
	StepError string `json:"step_error,omitempty"`
	// RollbackSwapTime is when it swapped back by the rollback command.
	RollbackSwapTime time.Time `json:"rollback_swap_time,omitzero"`
	// SavedCounted: the bytes it reused (its first DONE to stage or arm)
	// were counted in cutover_transfer_saved_bytes_total; a later DONE of
	// this deployment (a command resent after a controller restart) is not
	// counted again.
	SavedCounted bool `json:"saved_counted,omitempty"`
	// Unanswered is the kind of the stage 2 command it had not answered
	// when the step's deadline passed (or an operator ended stage 2 with
	// abort --force): it was unreachable or stuck, and what it did is not
	// known. With commit or rollback, it is brought to the deployment's
	// outcome when it answers (deployment/outcome.go); cleared then.
	Unanswered string `json:"unanswered,omitempty"`
}

// TransferRun is what one run of an agent's stage or arm command received
// over the wire (the run's largest transferred_bytes so far).
type TransferRun struct {
	Run   string `json:"run"`
	Bytes int64  `json:"bytes"`
}

// Transition is one entry of a deployment's history. An entry whose State
// is the state the deployment was already in records an event that did not
// change it (an approval, a schedule, an extension, a forced start).
type Transition struct {
	State   DeploymentState `json:"state"`
	Time    time.Time       `json:"time"`
	Actor   string          `json:"actor"`
	Message string          `json:"message,omitempty"`
}

// Agent is a front-end as the controller last heard of it.
type Agent struct {
	Name         string             `json:"name"`
	Environment  string             `json:"environment"`
	Labels       map[string]string  `json:"labels,omitempty"`
	Applications []AgentApplication `json:"applications,omitempty"`
	LastSeen     time.Time          `json:"last_seen"`
}

// AgentApplication is one application on one front-end.
type AgentApplication struct {
	Name             string   `json:"name"`
	RunningReleaseID string   `json:"running_release_id,omitempty"`
	StagedReleaseIDs []string `json:"staged_release_ids,omitempty"`
}
