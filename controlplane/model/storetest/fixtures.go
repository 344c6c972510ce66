package storetest

import (
	"time"

	"github.com/cutover-dev/cutover/controlplane/model"
)

// t0 is the time of the fixtures: UTC, whole microseconds, so that every
// encoding keeps it exactly.
var t0 = time.Date(2026, 3, 4, 5, 6, 7, 8000, time.UTC)

func environment(name string) *model.Environment {
	return &model.Environment{Name: name, TwoStage: true,
		Database: model.Database{Driver: "postgres", DSN: "postgres://db/" + name, StatementTimeout: time.Second, LockTimeout: 2 * time.Second, ShadowDSN: "postgres://shadow"},
		Windows:  []string{"Mon-Fri 02:00-04:00 Europe/Lisbon"}, PreparedTTL: 96 * time.Hour, RequireApproval: true, RequirePrepared: true,
		KeepReleases: 4, StageRate: 64 << 20, PeersDisabled: true, Deadlines: model.Stage2Deadlines{Arm: time.Minute, Hooks: 2 * time.Minute, Commit: 3 * time.Minute},
		DeployedVersions: map[string]model.DeployedVersion{"hello": {VersionLabel: "v1", ReleaseID: "r-1", DeploymentID: "d-1", DeployTime: t0}},
		CreateTime:       t0, UpdateTime: t0.Add(time.Hour)}
}

func application(name string) *model.Application {
	return &model.Application{Name: name, SourceDir: "/src/" + name, CreateTime: t0, UpdateTime: t0.Add(time.Minute)}
}

func release(id, app string, created time.Time) *model.Release {
	return &model.Release{ID: id, Application: app, SizeBytes: 1 << 20, FileCount: 12, ChunkCount: 16, CreateTime: created}
}

func deployment(id, env string) *model.Deployment {
	d := &model.Deployment{ID: id, Environment: env, State: model.Activating, Error: "", SingleStage: true,
		Applications: []model.DeploymentApplication{{Name: "hello", VersionLabel: "v2", ReleaseID: "r-2", PreviousReleaseID: "r-1",
			Previous: &model.DeployedVersion{VersionLabel: "v1", ReleaseID: "r-1", DeploymentID: "d-0", DeployTime: t0}}},
		CreateTime: t0, PrepareTime: t0.Add(time.Second), PreparedTime: t0.Add(2 * time.Second), ActivateTime: t0.Add(3 * time.Second), ExpireTime: t0.Add(96 * time.Hour),
		Agents: []model.DeploymentAgent{{Name: "fe-1", State: model.AgentArmed, ReleaseBytes: 100, TransferredBytes: 50, SwapTime: t0,
			Command: "c-1", Plan: []model.HookRef{{Application: "hello", Kind: "before_activate", Index: 0}},
			Hooks: []model.HookResult{{HookRef: model.HookRef{Application: "hello", Kind: "before_activate"}, Command: "true", ExitCode: 0, Duration: time.Millisecond, Output: "ok"}},
			Runs:  []model.TransferRun{{Run: "run-1", Bytes: 50}}, ArmDuration: time.Second, StepError: "slow", Unanswered: "commit"}},
		ActivationSpread: time.Millisecond, BuildDuration: time.Second, SQLPending: 2, SQLDone: true,
		History:     []model.Transition{{State: model.Planned, Time: t0, Actor: "alice"}, {State: model.Activating, Time: t0.Add(3 * time.Second), Actor: "bob", Message: "go"}},
		PreparedTTL: time.Hour, ScheduledTime: t0.Add(time.Hour), PredictedStage2: 5 * time.Second,
		Prediction: &model.Prediction{Total: 5 * time.Second, Parts: []model.PredictionPart{{Name: "sql", Duration: time.Second, Basis: "last run"}}, Time: t0},
		Approval:   &model.Approval{Actor: "carol", Time: t0, Comment: "fine"}, Step: model.StepCommit, StepTime: t0, Committed: true,
		KeepReleases: 3, StageRate: 1 << 20, Package: &model.PackageResult{Application: "hello", Ran: true, Changed: []string{"a"}, File: "hello.tgz"},
		Deadlines: model.Stage2Deadlines{Arm: time.Minute}}
	d.Tally = model.TallyAgents(d.Agents) // what a whole read returns
	return d
}

func agent(name, env string) *model.Agent {
	return &model.Agent{Name: name, Environment: env, Labels: map[string]string{"zone": "a"},
		Applications: []model.AgentApplication{{Name: "hello", RunningReleaseID: "r-1", StagedReleaseIDs: []string{"r-2"}}}, LastSeen: t0}
}

func operatorToken(id string) *model.OperatorToken {
	return &model.OperatorToken{ID: id, Hash: "h-" + id, Subject: "alice", Role: "deployer", Environment: "production",
		CreateTime: t0, ExpireTime: t0.Add(time.Hour), CreatedBy: "admin"}
}

func joinToken(id string) *model.JoinToken {
	return &model.JoinToken{ID: id, Hash: "h-" + id, Environment: "production", Name: "fe-1", Uses: 3, Used: 1,
		CreateTime: t0, ExpireTime: t0.Add(time.Hour), CreatedBy: "admin"}
}

func enrollment(name string) *model.Enrollment {
	return &model.Enrollment{ID: "e-" + name, Name: name, Environment: "production", EnrollTime: t0, JoinTokenID: "j-1",
		Certs: []model.IssuedCert{{Serial: "0a", NotAfter: t0.Add(24 * time.Hour)}}, RevokeTime: t0.Add(time.Hour), KeyHash: "5eed"}
}

func auditRecord(seq uint64) *model.AuditRecord {
	return &model.AuditRecord{Seq: seq, Time: t0, Subject: "alice", Roles: []string{"deployer"}, Method: "/cutover.v1.AdminService/CreateDeployment",
		Environment: "production", Deployment: "d-1", Summary: "created", Code: "OK", PrevHash: "p", Hash: "h"}
}
