package adminapi

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cutover-dev/cutover/controlplane/catalog"
	"github.com/cutover-dev/cutover/controlplane/deployment"
	"github.com/cutover-dev/cutover/controlplane/fleet"
	"github.com/cutover-dev/cutover/controlplane/migrate"
	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/pkg/identity"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// ts converts a time; the zero time becomes unset.
func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

// dur converts a duration; zero becomes unset.
func dur(d time.Duration) *durationpb.Duration {
	if d == 0 {
		return nil
	}
	return durationpb.New(d)
}

var deploymentStates = map[model.DeploymentState]cutoverv1.DeploymentState{
	model.Planned:    cutoverv1.DeploymentState_DEPLOYMENT_STATE_PLANNED,
	model.Preparing:  cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARING,
	model.Prepared:   cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED,
	model.Activating: cutoverv1.DeploymentState_DEPLOYMENT_STATE_ACTIVATING,
	model.Deployed:   cutoverv1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED,
	model.Failed:     cutoverv1.DeploymentState_DEPLOYMENT_STATE_FAILED,
	model.Aborted:    cutoverv1.DeploymentState_DEPLOYMENT_STATE_ABORTED,
	model.Expired:    cutoverv1.DeploymentState_DEPLOYMENT_STATE_EXPIRED,
	model.RolledBack: cutoverv1.DeploymentState_DEPLOYMENT_STATE_ROLLED_BACK,
}

var agentStates = map[model.AgentState]cutoverv1.AgentDeploymentState{
	model.AgentPending:    cutoverv1.AgentDeploymentState_AGENT_DEPLOYMENT_STATE_PENDING,
	model.AgentStaging:    cutoverv1.AgentDeploymentState_AGENT_DEPLOYMENT_STATE_STAGING,
	model.AgentStaged:     cutoverv1.AgentDeploymentState_AGENT_DEPLOYMENT_STATE_STAGED,
	model.AgentActivating: cutoverv1.AgentDeploymentState_AGENT_DEPLOYMENT_STATE_ACTIVATING,
	model.AgentActive:     cutoverv1.AgentDeploymentState_AGENT_DEPLOYMENT_STATE_ACTIVE,
	model.AgentFailed:     cutoverv1.AgentDeploymentState_AGENT_DEPLOYMENT_STATE_FAILED,
	model.AgentRolledBack: cutoverv1.AgentDeploymentState_AGENT_DEPLOYMENT_STATE_ROLLED_BACK,
	model.AgentArmed:      cutoverv1.AgentDeploymentState_AGENT_DEPLOYMENT_STATE_ARMED,
}

// environmentToProto converts e; now decides window_open and next_window_open.
func environmentToProto(e *model.Environment, now time.Time) *cutoverv1.Environment {
	out := &cutoverv1.Environment{
		Name:     e.Name,
		TwoStage: e.TwoStage,
		Database: &cutoverv1.Database{
			Driver:           e.Database.Driver,
			Dsn:              migrate.RedactDSN(e.Database.DSN), // the password never leaves the controller
			StatementTimeout: dur(e.Database.StatementTimeout),
			LockTimeout:      dur(e.Database.LockTimeout),
			ShadowDsn:        migrate.RedactDSN(e.Database.ShadowDSN),
		},
		Windows:         e.Windows,
		PreparedTtl:     durationpb.New(deployment.PreparedTTL(e)),
		RequireApproval: e.RequireApproval,
		RequirePrepared: e.RequirePrepared,
		CreateTime:      ts(e.CreateTime),
		UpdateTime:      ts(e.UpdateTime),
		KeepReleases:    deployment.KeepReleases(e),
		StageRate:       e.StageRate,
		PeersDisabled:   e.PeersDisabled,
		Stage2Deadlines: deadlinesToProto(deployment.Deadlines(e)),
	}
	w := deployment.Windows(e, now)
	out.WindowOpen, out.WindowClose, out.NextWindow, out.NextWindowOpen = w.Open, ts(w.Closes), w.Next, ts(w.NextOpen)
	if len(e.DeployedVersions) > 0 {
		out.DeployedVersions = map[string]*cutoverv1.DeployedVersion{}
		for app, v := range e.DeployedVersions {
			out.DeployedVersions[app] = &cutoverv1.DeployedVersion{VersionLabel: v.VersionLabel, ReleaseId: v.ReleaseID,
				DeploymentId: v.DeploymentID, DeployTime: ts(v.DeployTime)}
		}
	}
	return out
}

// environmentFromProto takes the fields an operator sets.
func environmentFromProto(e *cutoverv1.Environment) model.Environment {
	db := e.GetDatabase()
	return model.Environment{
		Name:     e.GetName(),
		TwoStage: e.GetTwoStage(),
		Database: model.Database{
			Driver:           db.GetDriver(),
			DSN:              db.GetDsn(),
			StatementTimeout: db.GetStatementTimeout().AsDuration(),
			LockTimeout:      db.GetLockTimeout().AsDuration(),
			ShadowDSN:        db.GetShadowDsn(),
		},
		Windows:         e.GetWindows(),
		PreparedTTL:     e.GetPreparedTtl().AsDuration(),
		RequireApproval: e.GetRequireApproval(),
		RequirePrepared: e.GetRequirePrepared(),
		KeepReleases:    e.GetKeepReleases(),
		StageRate:       e.GetStageRate(),
		PeersDisabled:   e.GetPeersDisabled(),
		Deadlines:       deadlinesFromProto(e.GetStage2Deadlines()),
	}
}

// deadlinesToProto converts stage 2 deadlines; nil when all are unset.
func deadlinesToProto(dl model.Stage2Deadlines) *cutoverv1.Stage2Deadlines {
	if dl == (model.Stage2Deadlines{}) {
		return nil
	}
	return &cutoverv1.Stage2Deadlines{Arm: dur(dl.Arm), Hooks: dur(dl.Hooks), Commit: dur(dl.Commit)}
}

// deadlinesFromProto takes the stage 2 deadlines an operator sets.
func deadlinesFromProto(dl *cutoverv1.Stage2Deadlines) model.Stage2Deadlines {
	return model.Stage2Deadlines{Arm: dl.GetArm().AsDuration(), Hooks: dl.GetHooks().AsDuration(), Commit: dl.GetCommit().AsDuration()}
}

// hookKinds maps cutover.yaml's hook kinds to the API's.
var hookKinds = map[string]cutoverv1.HookKind{
	"before_activate": cutoverv1.HookKind_HOOK_KIND_BEFORE_ACTIVATE,
	"validate":        cutoverv1.HookKind_HOOK_KIND_VALIDATE,
	"after_activate":  cutoverv1.HookKind_HOOK_KIND_AFTER_ACTIVATE,
}

// continueOptions takes the choices of a continue request.
func continueOptions(req *cutoverv1.ContinueDeploymentRequest) deployment.ContinueOptions {
	return deployment.ContinueOptions{Force: req.GetForce(), ForceReason: req.GetForceReason(), AtWindow: req.GetAtWindow(),
		RequirePrepared: req.GetRequirePrepared()}
}

// startOptions takes the choices of a start request.
func startOptions(req *cutoverv1.StartDeploymentRequest) deployment.ContinueOptions {
	return deployment.ContinueOptions{Force: req.GetForce(), ForceReason: req.GetForceReason()}
}

func applicationToProto(a *catalog.ApplicationView) *cutoverv1.Application {
	out := &cutoverv1.Application{Name: a.Name, SourceDir: a.SourceDir, CreateTime: ts(a.CreateTime), UpdateTime: ts(a.UpdateTime)}
	for _, r := range a.Releases {
		out.Releases = append(out.Releases, &cutoverv1.Release{Id: r.ID, Application: r.Application, SizeBytes: r.SizeBytes,
			FileCount: r.FileCount, ChunkCount: r.ChunkCount, CreateTime: ts(r.CreateTime)})
	}
	return out
}

func deploymentToProto(d *model.Deployment) *cutoverv1.Deployment {
	out := &cutoverv1.Deployment{
		Id:               d.ID,
		Environment:      d.Environment,
		State:            deploymentStates[d.State],
		Error:            d.Error,
		CreateTime:       ts(d.CreateTime),
		PrepareTime:      ts(d.PrepareTime),
		PreparedTime:     ts(d.PreparedTime),
		ActivateTime:     ts(d.ActivateTime),
		FinishTime:       ts(d.FinishTime),
		ExpireTime:       ts(d.ExpireTime),
		ActivationSpread: dur(d.ActivationSpread),
		BuildDuration:    dur(d.BuildDuration),
		TransferDuration: dur(d.TransferDuration),
		SqlDuration:      dur(d.SQLDuration),
		SwapDuration:     dur(d.SwapDuration),
		SingleStage:      d.SingleStage,
		ScheduledTime:    ts(d.ScheduledTime),
		ArmDuration:      dur(d.ArmDuration),
		HooksDuration:    dur(d.HooksDuration),
		RequirePrepared:  d.RequirePrepared,
		Stage2Deadlines:  deadlinesToProto(d.Deadlines),
	}
	if d.State == model.Activating {
		out.Step, out.StepDeadline = deployment.StepName(d), ts(deployment.StepDeadline(d))
	}
	if p := d.Package; p != nil {
		out.Package = &cutoverv1.DeploymentPackage{Application: p.Application, Ran: p.Ran, Changed: p.Changed,
			SizeBytes: p.SizeBytes, Duration: dur(p.Duration), Output: p.Output, Error: p.Error}
	}
	if d.State == model.Prepared {
		out.PredictedStage2Duration = dur(d.PredictedStage2)
	}
	if p := d.Prediction; p != nil {
		out.Stage2Prediction = &cutoverv1.Stage2Prediction{Total: durationpb.New(p.Total), Time: ts(p.Time)}
		for _, part := range p.Parts {
			out.Stage2Prediction.Parts = append(out.Stage2Prediction.Parts, &cutoverv1.Stage2PredictionPart{
				Name: part.Name, Duration: durationpb.New(part.Duration), Basis: part.Basis})
		}
	}
	if a := d.Approval; a != nil {
		out.Approval = &cutoverv1.Approval{Actor: a.Actor, Time: ts(a.Time), Comment: a.Comment}
	}
	if d.State == model.Deployed {
		// Measured, so always set once deployed, even when zero.
		out.ActivationSpread = durationpb.New(d.ActivationSpread)
		out.SqlDuration = durationpb.New(d.SQLDuration)
		out.SwapDuration = durationpb.New(d.SwapDuration)
	}
	for _, a := range d.Applications {
		out.Applications = append(out.Applications, &cutoverv1.DeploymentApplication{Name: a.Name, VersionLabel: a.VersionLabel,
			ReleaseId: a.ReleaseID, PreviousReleaseId: a.PreviousReleaseID})
	}
	for _, a := range d.Agents {
		out.Agents = append(out.Agents, deploymentAgentToProto(a))
	}
	for _, h := range d.History {
		out.History = append(out.History, &cutoverv1.DeploymentTransition{State: deploymentStates[h.State], Time: ts(h.Time),
			Actor: h.Actor, Message: h.Message})
	}
	out.ContractPending, out.ContractDone, out.ContractError = int32(d.ContractPending), d.ContractDone, d.ContractError
	out.SchemaUndone, out.DatabaseOutcome = d.SchemaUndone, d.DatabaseOutcome
	return out
}

// deploymentAgentToProto converts one agent's progress in a deployment.
func deploymentAgentToProto(a model.DeploymentAgent) *cutoverv1.DeploymentAgent {
	pa := &cutoverv1.DeploymentAgent{Name: a.Name, State: agentStates[a.State],
		ReleaseBytes: a.ReleaseBytes, TransferredBytes: a.TransferredBytes, Error: a.Error, SwapTime: ts(a.SwapTime),
		Unanswered: a.Unanswered, Ready: deployment.AwaitsFinish(a)}
	if a.Overlap > 0 {
		pa.Overlap = durationpb.New(a.Overlap)
	}
	for _, h := range a.Hooks {
		pa.Hooks = append(pa.Hooks, &cutoverv1.HookResult{Application: h.Application, Kind: hookKinds[h.Kind], Index: int32(h.Index),
			Command: h.Command, ExitCode: int32(h.ExitCode), Duration: durationpb.New(h.Duration), Output: h.Output, Error: h.Error})
	}
	return pa
}

// agentsToProto lists the agents the fleet knows with their enrollment,
// then the enrolled agents of env (all if empty) that never connected,
// sorted by environment and name.
func agentsToProto(as []fleet.AgentView, enrolled map[string]*model.Enrollment, env string) []*cutoverv1.Agent {
	var out []*cutoverv1.Agent
	seen := map[string]bool{}
	for _, a := range as {
		p := agentToProto(a)
		enrollmentToProto(p, enrolled[a.Name])
		out = append(out, p)
		seen[a.Name] = true
	}
	for name, e := range enrolled {
		if seen[name] || (env != "" && e.Environment != env) {
			continue
		}
		p := &cutoverv1.Agent{Name: name, Environment: e.Environment}
		enrollmentToProto(p, e)
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b *cutoverv1.Agent) int {
		if c := strings.Compare(a.Environment, b.Environment); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out
}

// enrollmentToProto adds what e says (identity, certificate expiry,
// revocation) to an agent of the same name and environment.
func enrollmentToProto(p *cutoverv1.Agent, e *model.Enrollment) {
	if e == nil || e.Environment != p.Environment {
		return
	}
	p.Identity = identity.Agent{Environment: e.Environment, Name: e.Name}.URI()
	if n := len(e.Certs); n > 0 {
		p.CertExpireTime = ts(e.Certs[n-1].NotAfter)
	}
	p.RevokeTime = ts(e.RevokeTime)
}

func agentToProto(a fleet.AgentView) *cutoverv1.Agent {
	out := &cutoverv1.Agent{Name: a.Name, Environment: a.Environment, Connected: a.Connected,
		LastSeenTime: ts(a.LastSeen), Labels: a.Labels}
	for _, app := range a.Applications {
		out.Applications = append(out.Applications, &cutoverv1.AgentApplication{Name: app.Name,
			RunningReleaseId: app.RunningReleaseID, StagedReleaseIds: app.StagedReleaseIDs})
	}
	return out
}

// driftToProto sets drifted and drift on the agents that ds says drift.
func driftToProto(agents []*cutoverv1.Agent, ds []deployment.AgentDrift) {
	for _, d := range ds {
		if !d.Drifted() {
			continue
		}
		for _, a := range agents {
			if a.GetName() == d.Agent && a.GetEnvironment() == d.Environment {
				a.Drifted, a.Drift = true, d.Reason()
			}
		}
	}
}

// describeChange says in words what changed from prev to d: the last
// history entry if the state or the history changed, else the agents in
// changed whose state or bytes differ from before (the agents of prev,
// by name; nil for a new agent).
func describeChange(prev, d *model.Deployment, changed []model.DeploymentAgent, before func(name string) *model.DeploymentAgent) string {
	if prev == nil || prev.State != d.State || len(prev.History) != len(d.History) {
		if n := len(d.History); n > 0 {
			return d.History[n-1].Message
		}
		return string(d.State)
	}
	var parts []string
	for _, a := range changed {
		if p := before(a.Name); p != nil && p.State == a.State && p.TransferredBytes == a.TransferredBytes {
			continue
		}
		part := fmt.Sprintf("agent %s %s", a.Name, a.State)
		if a.ReleaseBytes > 0 && a.State == model.AgentStaging {
			part += fmt.Sprintf(" (%d of %d bytes)", a.TransferredBytes, a.ReleaseBytes)
		}
		if a.Error != "" {
			part += ": " + a.Error
		}
		parts = append(parts, part)
	}
	if len(parts) == 0 {
		return "no visible change"
	}
	return strings.Join(parts, "; ")
}

// agentStatesToProto lists the counts of agents per state, in the order
// of the states' numbers, leaving out states no agent is in.
func agentStatesToProto(counts map[model.AgentState]int32) []*cutoverv1.AgentStateCount {
	byState := map[cutoverv1.AgentDeploymentState]int32{}
	for st, n := range counts {
		byState[agentStates[st]] += n
	}
	var out []*cutoverv1.AgentStateCount
	for _, st := range slices.Sorted(maps.Keys(byState)) {
		if byState[st] > 0 {
			out = append(out, &cutoverv1.AgentStateCount{State: st, Count: byState[st]})
		}
	}
	return out
}

// planToProto converts the SQL plan of a deployment.
func planToProto(id string, p *migrate.Plan, dl model.Stage2Deadlines) *cutoverv1.DeploymentPlan {
	out := &cutoverv1.DeploymentPlan{DeploymentId: id, Script: p.Script, Stage2Deadlines: deadlinesToProto(dl),
		PendingMigrations: pendingToProto(p.Pending), Irreversible: irreversibleToProto("expand", p.Irreversible)}
	if p.Down != nil {
		out.DownScript = p.Down.Script
	}
	if c := p.Contract; c != nil {
		out.ContractScript, out.ContractMigrations = c.Script, pendingToProto(c.Pending)
		out.Irreversible = append(out.Irreversible, irreversibleToProto("contract", c.Irreversible)...)
		if c.Down != nil {
			out.ContractDownScript = c.Down.Script
		}
	}
	for _, g := range p.Groups {
		pg := &cutoverv1.SqlGroup{NoTransaction: g.NoTransaction, ShadowDuration: dur(g.ShadowDuration)}
		for _, st := range g.Steps {
			pg.Migrations = append(pg.Migrations, st.Name)
		}
		out.Groups = append(out.Groups, pg)
	}
	if sh := p.Shadow; sh != nil {
		out.Shadow, out.ShadowSetupDuration, out.ShadowDuration = sh.Database, durationpb.New(sh.Setup), durationpb.New(sh.Duration)
	}
	for _, u := range p.Unproven {
		out.Unproven = append(out.Unproven, &cutoverv1.UnprovenStatement{Application: u.Application, File: u.File,
			Statement: int32(u.Statement), Line: int32(u.Line), Kind: u.Kind, Reason: u.Reason, Sql: u.SQL})
	}
	return out
}

// pendingToProto converts the migrations of a phase.
func pendingToProto(ps []migrate.Pending) []*cutoverv1.PendingMigration {
	var out []*cutoverv1.PendingMigration
	for _, m := range ps {
		out = append(out, &cutoverv1.PendingMigration{Application: m.Application,
			Version: m.Version, Name: m.Name, Checksum: m.Checksum, NoTransaction: m.NoTransaction})
	}
	return out
}

// irreversibleToProto converts the irreversible migrations of phase.
func irreversibleToProto(phase string, is []migrate.Irreversible) []*cutoverv1.IrreversibleMigration {
	var out []*cutoverv1.IrreversibleMigration
	for _, i := range is {
		out = append(out, &cutoverv1.IrreversibleMigration{Application: i.Application, Name: i.Name, Phase: phase, Reason: i.Reason})
	}
	return out
}

// stopResultsToProto converts the outcomes of StopApplication.
func stopResultsToProto(rs []fleet.StopResult) *cutoverv1.StopApplicationResponse {
	out := &cutoverv1.StopApplicationResponse{}
	for _, r := range rs {
		out.Results = append(out.Results, &cutoverv1.StopApplicationResult{Agent: r.Agent, Error: r.Error})
	}
	return out
}
