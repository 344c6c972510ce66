package store

// The records of testdata/schema5/controller.db. This file is also the
// values file of testdata/schema5/mkfixture.go, which wrote that file with
// the store of commit 0e8265e (schema 5, JSON values): there, the import
// below names controlplane/store, whose records had the same fields. Keep
// it compiling in both places: only composite literals of the record types,
// the time helper and the constants below.

import (
	"time"

	m "github.com/cutover-dev/cutover/controlplane/model"
)

var (
	fxT0    = time.Date(2026, 3, 2, 1, 2, 3, 456789000, time.UTC)
	fxAt    = func(d time.Duration) time.Time { return fxT0.Add(d) }
	fxPrev  = &m.DeployedVersion{VersionLabel: "v1", ReleaseID: "r-1", DeploymentID: "d-1", DeployTime: fxAt(time.Hour)}
	fxPlan  = []byte(`{"migrations":[{"version":"0001","name":"init"}]}`)
	fxChunk = []byte("a chunk that the migration leaves as it is")
	fxEnvs  = []*m.Environment{
		{
			Name: "production", TwoStage: true,
			Database: m.Database{Driver: "postgres", DSN: "postgres://app@db/app", StatementTimeout: 30 * time.Second,
				LockTimeout: 2 * time.Second, ShadowDSN: "postgres://admin@db/postgres"},
			Windows:         []string{"Mon-Fri 02:00-04:00 Europe/Lisbon", "Sat 01:00-02:00 UTC"},
			PreparedTTL:     48 * time.Hour,
			RequireApproval: true, RequirePrepared: true, KeepReleases: 3, StageRate: 64 << 20,
			Deadlines: m.Stage2Deadlines{Arm: time.Minute, Hooks: 2 * time.Minute, Commit: 30 * time.Second},
			DeployedVersions: map[string]m.DeployedVersion{
				"hello": {VersionLabel: "v2", ReleaseID: "r-2", DeploymentID: "d-2", DeployTime: fxAt(3 * time.Hour)},
			},
			CreateTime: fxT0, UpdateTime: fxAt(3 * time.Hour),
		},
		{Name: "staging", Database: m.Database{Driver: "sqlite", DSN: "/var/lib/app/app.db"}, CreateTime: fxAt(time.Minute), UpdateTime: fxAt(time.Minute)},
	}
	fxApps     = []*m.Application{{Name: "hello", SourceDir: "/srv/sources/hello", CreateTime: fxT0, UpdateTime: fxAt(time.Second)}}
	fxReleases = []*m.Release{
		{ID: "r-1", Application: "hello", SizeBytes: 1234, FileCount: 3, ChunkCount: 1, CreateTime: fxAt(10 * time.Minute)},
		{ID: "r-2", Application: "hello", SizeBytes: 5678, FileCount: 4, ChunkCount: 2, CreateTime: fxAt(2 * time.Hour)},
	}
	fxManifests = map[string][]byte{"r-1": []byte("manifest of r-1"), "r-2": []byte("manifest of r-2")}

	fxDeployments = []*m.Deployment{
		{ // d-1: deployed in two stages, approved, with hooks, SQL and a package step
			ID: "d-1", Environment: "production", State: m.Deployed,
			Applications: []m.DeploymentApplication{{Name: "hello", VersionLabel: "v1", ReleaseID: "r-1"}},
			CreateTime:   fxAt(time.Minute), PrepareTime: fxAt(2 * time.Minute), PreparedTime: fxAt(5 * time.Minute),
			ActivateTime: fxAt(50 * time.Minute), FinishTime: fxAt(time.Hour), ExpireTime: fxAt(53 * time.Hour),
			Agents: []m.DeploymentAgent{
				{Name: "fe-b", State: m.AgentActive, ReleaseBytes: 1234, TransferredBytes: 1000, SwapTime: fxAt(59 * time.Minute),
					Overlap: 150 * time.Millisecond, Ready: true, FinishSent: true,
					Plan:      []m.HookRef{{Application: "hello", Kind: "before_activate", Index: 0}, {Application: "hello", Kind: "after_activate", Index: 1}},
					Hooks:     []m.HookResult{{HookRef: m.HookRef{Application: "hello", Kind: "before_activate"}, Command: "./warm", Duration: time.Second, Output: "warm\n"}, {HookRef: m.HookRef{Application: "hello", Kind: "after_activate", Index: 1}, Command: "./notify", ExitCode: 3, Duration: 2 * time.Second, Error: "exit status 3"}},
					BeforeRan: true, ArmTransferredBytes: 10, Runs: []m.TransferRun{{Run: "run-1", Bytes: 990}},
					ArmDuration: 300 * time.Millisecond, CommitDuration: 700 * time.Millisecond, SavedCounted: true},
				{Name: "fe-a", State: m.AgentActive, ReleaseBytes: 1234, TransferredBytes: 234, SwapTime: fxAt(59*time.Minute + time.Second), SavedCounted: true},
			},
			ActivationSpread: time.Second, BuildDuration: 3 * time.Second, TransferDuration: 4 * time.Second, SQLDuration: 5 * time.Second,
			SQLPending: 1, SQLDone: true, SwapDuration: 6 * time.Second,
			History: []m.Transition{
				{State: m.Planned, Time: fxAt(time.Minute), Actor: "alice"},
				{State: m.Preparing, Time: fxAt(2 * time.Minute), Actor: "alice"},
				{State: m.Prepared, Time: fxAt(5 * time.Minute), Actor: "controller"},
				{State: m.Prepared, Time: fxAt(6 * time.Minute), Actor: "bob", Message: "approved: looks good"},
				{State: m.Activating, Time: fxAt(50 * time.Minute), Actor: "alice"},
				{State: m.Deployed, Time: fxAt(time.Hour), Actor: "controller"},
			},
			PreparedTTL: 48 * time.Hour, ScheduledTime: fxAt(50 * time.Minute), PredictedStage2: 9 * time.Second,
			Prediction: &m.Prediction{Total: 9 * time.Second, Time: fxAt(5 * time.Minute), Parts: []m.PredictionPart{
				{Name: "arm", Duration: time.Second, Basis: "median of 3"}, {Name: "commit", Duration: 8 * time.Second}}},
			Approval: &m.Approval{Actor: "bob", Time: fxAt(6 * time.Minute), Comment: "looks good"},
			Step:     m.StepAfter, StepTime: fxAt(59 * time.Minute), Committed: true, RequirePrepared: true, KeepReleases: 3, StageRate: 64 << 20,
			ArmDuration: 300 * time.Millisecond, HooksDuration: 3 * time.Second,
			Package:   &m.PackageResult{Application: "hello", Ran: true, Changed: []string{"bin/hello"}, SizeBytes: 99, Duration: time.Second, Output: "ok", File: "hello.tgz"},
			Deadlines: m.Stage2Deadlines{Arm: time.Minute, Hooks: 2 * time.Minute, Commit: 30 * time.Second},
		},
		{ // d-2: single stage, deployed, later rolled back by command.
			// RollbackAttempt was written as RollbackKey: "d-2~rollback.1"
			// (to regenerate, put that back: the only field renamed since).
			ID: "d-2", Environment: "production", State: m.Deployed, SingleStage: true, StartForced: true,
			Applications: []m.DeploymentApplication{{Name: "hello", VersionLabel: "v2", ReleaseID: "r-2", PreviousReleaseID: "r-1", Previous: fxPrev}},
			RollingBack:  true, RollbackAttempt: 1, RollbackError: "fe-a: health check failed", RollbackSpread: 2 * time.Second,
			CreateTime: fxAt(2 * time.Hour), PrepareTime: fxAt(2 * time.Hour), ActivateTime: fxAt(2*time.Hour + time.Minute), FinishTime: fxAt(3 * time.Hour),
			Agents: []m.DeploymentAgent{
				{Name: "fe-a", State: m.AgentRolledBack, SwappedBack: true, RollbackSwapTime: fxAt(4 * time.Hour), Command: "cmd-7",
					RollbackPlan: []m.HookRef{{Application: "hello", Kind: "after_activate", Index: 2}}},
				{Name: "fe-b", State: m.AgentActive, StepError: "timed out", Unanswered: "rollback"},
			},
			Ending:  m.Deployed,
			History: []m.Transition{{State: m.Planned, Time: fxAt(2 * time.Hour), Actor: "carol"}, {State: m.Deployed, Time: fxAt(3 * time.Hour), Actor: "controller", Message: "forced: hotfix"}},
		},
		{ // d-3: failed in stage 1
			ID: "d-3", Environment: "staging", State: m.Failed, Error: "build hello: exit status 2; nothing was sent to the front-ends",
			Applications: []m.DeploymentApplication{{Name: "hello", VersionLabel: "v3"}},
			CreateTime:   fxAt(5 * time.Hour), PrepareTime: fxAt(5 * time.Hour), FinishTime: fxAt(5*time.Hour + time.Minute),
			Agents:  []m.DeploymentAgent{{Name: "fe-s", State: m.AgentFailed, Error: "not staged"}},
			History: []m.Transition{{State: m.Failed, Time: fxAt(5*time.Hour + time.Minute), Actor: "controller", Message: "build failed"}},
		},
		{ // d-4: in stage 2, at the commit step
			ID: "d-4", Environment: "production", State: m.Activating,
			Applications: []m.DeploymentApplication{{Name: "hello", VersionLabel: "v4", ReleaseID: "r-2", PreviousReleaseID: "r-2", Previous: &m.DeployedVersion{VersionLabel: "v2", ReleaseID: "r-2", DeploymentID: "d-2", DeployTime: fxAt(3 * time.Hour)}}},
			CreateTime:   fxAt(6 * time.Hour), PrepareTime: fxAt(6 * time.Hour), PreparedTime: fxAt(7 * time.Hour), ActivateTime: fxAt(8 * time.Hour), ExpireTime: fxAt(55 * time.Hour),
			Agents: []m.DeploymentAgent{
				{Name: "fe-c", State: m.AgentArmed, Command: "cmd-11", Runs: []m.TransferRun{{Run: "run-a", Bytes: 7}, {Run: "run-b", Bytes: 8}}},
				{Name: "fe-a", State: m.AgentActivating, Command: "cmd-12"},
				{Name: "fe-b", State: m.AgentStaged},
			},
			Step: m.StepCommit, StepTime: fxAt(8*time.Hour + time.Second), Ending: m.Deployed, SQLDone: true,
		},
		{ // d-5: planned, nothing done yet
			ID: "d-5", Environment: "staging", State: m.Planned,
			Applications: []m.DeploymentApplication{{Name: "hello", VersionLabel: "v5"}},
			CreateTime:   fxAt(9 * time.Hour), History: []m.Transition{{State: m.Planned, Time: fxAt(9 * time.Hour), Actor: "alice"}},
		},
	}
	fxAgents = []*m.Agent{
		{Name: "fe-a", Environment: "production", Labels: map[string]string{"zone": "a"}, LastSeen: fxAt(8 * time.Hour),
			Applications: []m.AgentApplication{{Name: "hello", RunningReleaseID: "r-2", StagedReleaseIDs: []string{"r-1", "r-2"}}}},
		{Name: "fe-s", Environment: "staging", LastSeen: fxAt(5 * time.Hour)},
	}
	fxTokens = []*m.OperatorToken{
		{ID: "tok-1", Hash: "aa11", Subject: "alice", Role: "admin", CreateTime: fxT0},
		{ID: "tok-2", Hash: "bb22", Subject: "bob", Role: "approver", Environment: "production", CreateTime: fxAt(time.Minute),
			ExpireTime: fxAt(720 * time.Hour), RevokeTime: fxAt(10 * time.Hour), CreatedBy: "alice"},
	}
	fxJoinTokens = []*m.JoinToken{
		{ID: "jt-1", Hash: "cc33", Environment: "production", Name: "fe-a", Uses: 1, Used: 1, CreateTime: fxT0, ExpireTime: fxAt(time.Hour), CreatedBy: "alice"},
		{ID: "jt-2", Hash: "dd44", Environment: "staging", Uses: 5, CreateTime: fxT0, ExpireTime: fxAt(24 * time.Hour)},
	}
	fxEnrollments = []*m.Enrollment{
		{ID: "en-1", Name: "fe-a", Environment: "production", EnrollTime: fxAt(time.Minute), JoinTokenID: "jt-1",
			Certs: []m.IssuedCert{{Serial: "0a", NotAfter: fxAt(720 * time.Hour)}, {Serial: "0b", NotAfter: fxAt(1440 * time.Hour)}}},
		{ID: "en-2", Name: "fe-old", Environment: "staging", EnrollTime: fxAt(time.Minute), RevokeTime: fxAt(2 * time.Hour)},
	}
	// fxAudit are the entries appended with controlplane/audit (which
	// numbers, times from its clock, chains and hashes them): clock times
	// fxAt(i minutes) for entry i+1.
	fxAudit = []fxAuditEntry{
		{Subject: "alice", Roles: []string{"admin"}, Method: "/cutover.v1.AdminService/CreateEnvironment", Environment: "production", Summary: "name=production", Code: "OK"},
		{Subject: "bob", Roles: []string{"approver", "viewer"}, Method: "/cutover.v1.AdminService/ApproveDeployment", Environment: "production", Deployment: "d-1", Code: "OK", Reason: "looks good"},
		{Subject: "mallory", Method: "/cutover.v1.AdminService/AbortDeployment", Deployment: "d-4", Code: "PERMISSION_DENIED"},
		{Subject: "controller", Method: "expire", Environment: "staging", Summary: "nothing to expire", Code: "OK"},
	}
)

// fxAuditEntry is what an audit entry of the fixture was appended with.
type fxAuditEntry struct {
	Subject, Method, Environment, Deployment, Summary, Code, Reason string
	Roles                                                           []string
}
