package storecodec

import (
	"cmp"
	"slices"

	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/pkg/journalkey"
	storagev1 "github.com/cutover-dev/cutover/proto/cutover/storage/v1"
)

// conv converts enums and keeps the first error, so that the conversions
// of whole records read as plain field lists.
type conv struct{ err error }

func (c *conv) keep(err error) {
	if c.err == nil {
		c.err = err
	}
}

func (c *conv) toDState(s model.DeploymentState) storagev1.DeploymentState {
	v, err := deploymentStates.encode(s)
	c.keep(err)
	return v
}

func (c *conv) fromDState(v storagev1.DeploymentState) model.DeploymentState {
	s, err := deploymentStates.decode(v)
	c.keep(err)
	return s
}

// EncodeDeployment encodes d without its agents (each is a record of its
// own: EncodeDeploymentAgent).
func EncodeDeployment(d *model.Deployment) ([]byte, error) {
	return encode(d, toDeployment)
}

// DecodeDeployment decodes what EncodeDeployment encoded; its Agents are
// nil, for the caller to fill from the agents' records.
func DecodeDeployment(b []byte) (*model.Deployment, error) {
	return decode(b, "deployment", func() *storagev1.Deployment { return new(storagev1.Deployment) }, fromDeployment)
}

// EncodeDeploymentAgent encodes one agent's progress in a deployment.
func EncodeDeploymentAgent(a *model.DeploymentAgent) ([]byte, error) {
	return AppendDeploymentAgent(nil, a)
}

// AppendDeploymentAgent appends the encoding of a to b, as
// EncodeDeploymentAgent encodes it: with a scratch buffer, a store that
// compares each agent of a large deployment with what it holds allocates
// only for the agents that changed.
func AppendDeploymentAgent(b []byte, a *model.DeploymentAgent) ([]byte, error) {
	var c conv
	m := toAgentProgress(&c, a)
	if c.err != nil {
		return b, c.err
	}
	return marshal.MarshalAppend(b, m)
}

// DecodeDeploymentAgent decodes what EncodeDeploymentAgent encoded.
func DecodeDeploymentAgent(b []byte) (*model.DeploymentAgent, error) {
	return decode(b, "deployment agent", func() *storagev1.DeploymentAgent { return new(storagev1.DeploymentAgent) },
		func(m *storagev1.DeploymentAgent) (*model.DeploymentAgent, error) {
			var c conv
			a := fromAgentProgress(&c, m)
			return &a, c.err
		})
}

func toDeployment(d *model.Deployment) (*storagev1.Deployment, error) {
	var c conv
	step, err := stage2Steps.encode(d.Step)
	c.keep(err)
	m := &storagev1.Deployment{
		Id: d.ID, Environment: d.Environment, Applications: each(d.Applications, toDeploymentApplication),
		State: c.toDState(d.State), Error: d.Error, SingleStage: d.SingleStage, RollingBack: d.RollingBack,
		RollbackAttempt: uint32(d.RollbackAttempt), RollbackKey: legacyRollbackKey(d),
		RollbackError: d.RollbackError, RollbackSpreadNs: ns(d.RollbackSpread),
		CreateTime: ts(d.CreateTime), PrepareTime: ts(d.PrepareTime), PreparedTime: ts(d.PreparedTime),
		ActivateTime: ts(d.ActivateTime), FinishTime: ts(d.FinishTime), ExpireTime: ts(d.ExpireTime),
		ActivationSpreadNs: ns(d.ActivationSpread), BuildDurationNs: ns(d.BuildDuration),
		TransferDurationNs: ns(d.TransferDuration), SqlDurationNs: ns(d.SQLDuration),
		SqlPending: int64(d.SQLPending), SqlDone: d.SQLDone, SwapDurationNs: ns(d.SwapDuration),
		History: each(d.History, func(t *model.Transition) *storagev1.Transition {
			return &storagev1.Transition{State: c.toDState(t.State), Time: ts(t.Time), Actor: t.Actor, Message: t.Message}
		}),
		PreparedTtlNs: ns(d.PreparedTTL), ScheduledTime: ts(d.ScheduledTime), PredictedStage2Ns: ns(d.PredictedStage2),
		Step: step, StepTime: ts(d.StepTime), Ending: c.toDState(d.Ending), Committed: d.Committed,
		RequirePrepared: d.RequirePrepared, KeepReleases: d.KeepReleases, StageRate: d.StageRate,
		StartForced: d.StartForced, ArmDurationNs: ns(d.ArmDuration), HooksDurationNs: ns(d.HooksDuration),
		Reconcile: d.Reconcile, Deadlines: toDeadlines(d.Deadlines),
		ContractPending: int64(d.ContractPending), ContractDone: d.ContractDone, ContractDurationNs: ns(d.ContractDuration),
		ContractError: d.ContractError, ContractRuns: int64(d.ContractRuns), RollbackDatabase: d.RollbackDatabase,
		RollbackForced: d.RollbackForced, SchemaUndone: strs(d.SchemaUndone), DatabaseOutcome: d.DatabaseOutcome,
	}
	if p := d.Prediction; p != nil {
		m.Prediction = &storagev1.Prediction{TotalNs: ns(p.Total), Time: ts(p.Time),
			Parts: each(p.Parts, func(p *model.PredictionPart) *storagev1.PredictionPart {
				return &storagev1.PredictionPart{Name: p.Name, DurationNs: ns(p.Duration), Basis: p.Basis}
			})}
	}
	if a := d.Approval; a != nil {
		m.Approval = &storagev1.Approval{Actor: a.Actor, Time: ts(a.Time), Comment: a.Comment}
	}
	m.AgentTally = toTally(&c, d.Tally)
	if p := d.Package; p != nil {
		m.Package = &storagev1.PackageResult{Application: p.Application, Ran: p.Ran, Changed: strs(p.Changed),
			SizeBytes: p.SizeBytes, DurationNs: ns(p.Duration), Output: p.Output, Error: p.Error, Pending: p.Pending, File: p.File}
	}
	return m, c.err
}

func fromDeployment(m *storagev1.Deployment) (*model.Deployment, error) {
	var c conv
	step, err := stage2Steps.decode(m.Step)
	c.keep(err)
	d := &model.Deployment{
		ID: m.Id, Environment: m.Environment, Applications: eachP(m.Applications, fromDeploymentApplication),
		State: c.fromDState(m.State), Error: m.Error, SingleStage: m.SingleStage, RollingBack: m.RollingBack,
		RollbackAttempt: rollbackAttempt(m), RollbackError: m.RollbackError, RollbackSpread: dur(m.RollbackSpreadNs),
		CreateTime: tm(m.CreateTime), PrepareTime: tm(m.PrepareTime), PreparedTime: tm(m.PreparedTime),
		ActivateTime: tm(m.ActivateTime), FinishTime: tm(m.FinishTime), ExpireTime: tm(m.ExpireTime),
		ActivationSpread: dur(m.ActivationSpreadNs), BuildDuration: dur(m.BuildDurationNs),
		TransferDuration: dur(m.TransferDurationNs), SQLDuration: dur(m.SqlDurationNs),
		SQLPending: int(m.SqlPending), SQLDone: m.SqlDone, SwapDuration: dur(m.SwapDurationNs),
		History: eachP(m.History, func(t *storagev1.Transition) model.Transition {
			return model.Transition{State: c.fromDState(t.State), Time: tm(t.Time), Actor: t.Actor, Message: t.Message}
		}),
		PreparedTTL: dur(m.PreparedTtlNs), ScheduledTime: tm(m.ScheduledTime), PredictedStage2: dur(m.PredictedStage2Ns),
		Step: step, StepTime: tm(m.StepTime), Ending: c.fromDState(m.Ending), Committed: m.Committed,
		RequirePrepared: m.RequirePrepared, KeepReleases: m.KeepReleases, StageRate: m.StageRate,
		StartForced: m.StartForced, ArmDuration: dur(m.ArmDurationNs), HooksDuration: dur(m.HooksDurationNs),
		Reconcile: m.Reconcile, Deadlines: fromDeadlines(m.Deadlines),
		ContractPending: int(m.ContractPending), ContractDone: m.ContractDone, ContractDuration: dur(m.ContractDurationNs),
		ContractError: m.ContractError, ContractRuns: int(m.ContractRuns), RollbackDatabase: m.RollbackDatabase,
		RollbackForced: m.RollbackForced, SchemaUndone: strs(m.SchemaUndone), DatabaseOutcome: m.DatabaseOutcome,
	}
	if p := m.Prediction; p != nil {
		d.Prediction = &model.Prediction{Total: dur(p.TotalNs), Time: tm(p.Time),
			Parts: eachP(p.Parts, func(p *storagev1.PredictionPart) model.PredictionPart {
				return model.PredictionPart{Name: p.Name, Duration: dur(p.DurationNs), Basis: p.Basis}
			})}
	}
	if a := m.Approval; a != nil {
		d.Approval = &model.Approval{Actor: a.Actor, Time: tm(a.Time), Comment: a.Comment}
	}
	d.Tally = fromTally(&c, m.AgentTally)
	if p := m.Package; p != nil {
		d.Package = &model.PackageResult{Application: p.Application, Ran: p.Ran, Changed: strs(p.Changed),
			SizeBytes: p.SizeBytes, Duration: dur(p.DurationNs), Output: p.Output, Error: p.Error, Pending: p.Pending, File: p.File}
	}
	return d, c.err
}

func toDeploymentApplication(a *model.DeploymentApplication) *storagev1.DeploymentApplication {
	m := &storagev1.DeploymentApplication{Name: a.Name, VersionLabel: a.VersionLabel, ReleaseId: a.ReleaseID, PreviousReleaseId: a.PreviousReleaseID}
	if a.Previous != nil {
		m.Previous = toDeployedVersion(a.Previous)
	}
	return m
}

func fromDeploymentApplication(m *storagev1.DeploymentApplication) model.DeploymentApplication {
	a := model.DeploymentApplication{Name: m.Name, VersionLabel: m.VersionLabel, ReleaseID: m.ReleaseId, PreviousReleaseID: m.PreviousReleaseId}
	if m.Previous != nil {
		v := fromDeployedVersion(m.Previous)
		a.Previous = &v
	}
	return a
}

func toDeployedVersion(v *model.DeployedVersion) *storagev1.DeployedVersion {
	return &storagev1.DeployedVersion{VersionLabel: v.VersionLabel, ReleaseId: v.ReleaseID, DeploymentId: v.DeploymentID, DeployTime: ts(v.DeployTime)}
}

func fromDeployedVersion(m *storagev1.DeployedVersion) model.DeployedVersion {
	return model.DeployedVersion{VersionLabel: m.VersionLabel, ReleaseID: m.ReleaseId, DeploymentID: m.DeploymentId, DeployTime: tm(m.DeployTime)}
}

func toDeadlines(d model.Stage2Deadlines) *storagev1.Stage2Deadlines {
	if d == (model.Stage2Deadlines{}) {
		return nil
	}
	return &storagev1.Stage2Deadlines{ArmNs: ns(d.Arm), HooksNs: ns(d.Hooks), CommitNs: ns(d.Commit)}
}

func fromDeadlines(m *storagev1.Stage2Deadlines) model.Stage2Deadlines {
	return model.Stage2Deadlines{Arm: dur(m.GetArmNs()), Hooks: dur(m.GetHooksNs()), Commit: dur(m.GetCommitNs())}
}

func toAgentProgress(c *conv, a *model.DeploymentAgent) *storagev1.DeploymentAgent {
	st, err := agentStates.encode(a.State)
	c.keep(err)
	return &storagev1.DeploymentAgent{
		Name: a.Name, State: st, ReleaseBytes: a.ReleaseBytes, TransferredBytes: a.TransferredBytes,
		Error: a.Error, SwapTime: ts(a.SwapTime), OverlapNs: ns(a.Overlap), Ready: a.Ready,
		FinishSent: a.FinishSent, SwappedBack: a.SwappedBack, Command: a.Command,
		Plan: each(a.Plan, toHookRef),
		Hooks: each(a.Hooks, func(h *model.HookResult) *storagev1.HookResult {
			return &storagev1.HookResult{Ref: toHookRef(&h.HookRef), Command: h.Command, ExitCode: int64(h.ExitCode),
				DurationNs: ns(h.Duration), Output: h.Output, Error: h.Error}
		}),
		BeforeRan: a.BeforeRan, RollbackPlan: each(a.RollbackPlan, toHookRef), ArmTransferredBytes: a.ArmTransferredBytes,
		Runs: each(a.Runs, func(r *model.TransferRun) *storagev1.TransferRun {
			return &storagev1.TransferRun{Run: r.Run, Bytes: r.Bytes}
		}),
		ArmDurationNs: ns(a.ArmDuration), CommitDurationNs: ns(a.CommitDuration), StepError: a.StepError,
		RollbackSwapTime: ts(a.RollbackSwapTime), SavedCounted: a.SavedCounted, Unanswered: a.Unanswered,
	}
}

func fromAgentProgress(c *conv, m *storagev1.DeploymentAgent) model.DeploymentAgent {
	st, err := agentStates.decode(m.State)
	c.keep(err)
	return model.DeploymentAgent{
		Name: m.Name, State: st, ReleaseBytes: m.ReleaseBytes, TransferredBytes: m.TransferredBytes,
		Error: m.Error, SwapTime: tm(m.SwapTime), Overlap: dur(m.OverlapNs), Ready: m.Ready,
		FinishSent: m.FinishSent, SwappedBack: m.SwappedBack, Command: m.Command,
		Plan: eachP(m.Plan, fromHookRef),
		Hooks: eachP(m.Hooks, func(h *storagev1.HookResult) model.HookResult {
			return model.HookResult{HookRef: fromHookRef(h.GetRef()), Command: h.Command, ExitCode: int(h.ExitCode),
				Duration: dur(h.DurationNs), Output: h.Output, Error: h.Error}
		}),
		BeforeRan: m.BeforeRan, RollbackPlan: eachP(m.RollbackPlan, fromHookRef), ArmTransferredBytes: m.ArmTransferredBytes,
		Runs: eachP(m.Runs, func(r *storagev1.TransferRun) model.TransferRun {
			return model.TransferRun{Run: r.Run, Bytes: r.Bytes}
		}),
		ArmDuration: dur(m.ArmDurationNs), CommitDuration: dur(m.CommitDurationNs), StepError: m.StepError,
		RollbackSwapTime: tm(m.RollbackSwapTime), SavedCounted: m.SavedCounted, Unanswered: m.Unanswered,
	}
}

// toTally encodes t, its states in the order of their stored values (the
// same bytes for the same counts); nil stays absent.
func toTally(c *conv, t *model.AgentTally) *storagev1.AgentTally {
	if t == nil {
		return nil
	}
	m := &storagev1.AgentTally{Pending: int64(t.Pending), Failed: int64(t.Failed), Waiting: int64(t.Waiting), Unfinished: int64(t.Unfinished)}
	for s, n := range t.States {
		st, err := agentStates.encode(s)
		c.keep(err)
		m.States = append(m.States, &storagev1.AgentStateCount{State: st, Count: int64(n)})
	}
	slices.SortFunc(m.States, func(a, b *storagev1.AgentStateCount) int { return cmp.Compare(a.State, b.State) })
	return m
}

func fromTally(c *conv, m *storagev1.AgentTally) *model.AgentTally {
	if m == nil {
		return nil
	}
	t := &model.AgentTally{Pending: int(m.Pending), Failed: int(m.Failed), Waiting: int(m.Waiting), Unfinished: int(m.Unfinished)}
	for _, sc := range m.States {
		st, err := agentStates.decode(sc.State)
		c.keep(err)
		if t.States == nil {
			t.States = map[model.AgentState]int{}
		}
		t.States[st] += int(sc.Count)
	}
	return t
}

func toHookRef(h *model.HookRef) *storagev1.HookRef {
	return &storagev1.HookRef{Application: h.Application, Kind: h.Kind, Index: int64(h.Index)}
}

func fromHookRef(m *storagev1.HookRef) model.HookRef {
	return model.HookRef{Application: m.GetApplication(), Kind: m.GetKind(), Index: int(m.GetIndex())}
}

// legacyRollbackKey is what controllers before rollback_attempt stored
// for d's rollback by command (rollback_key, "<id>~rollback.<n>"): written
// for one release beside rollback_attempt, so that a controller of the
// previous version that shares the store (etcd) follows a rollback in
// flight. Remove it with pkg/journalkey.
func legacyRollbackKey(d *model.Deployment) string {
	if d.RollbackAttempt <= 0 {
		return ""
	}
	return journalkey.Pack(d.ID, d.RollbackAttempt)
}

// rollbackAttempt reads m's attempt, from rollback_attempt, or from the
// rollback_key of a record that a controller before that field wrote.
func rollbackAttempt(m *storagev1.Deployment) int {
	if m.RollbackAttempt > 0 {
		return int(m.RollbackAttempt)
	}
	if id, n := journalkey.Unpack(m.RollbackKey); id == m.Id {
		return n
	}
	return 0
}
