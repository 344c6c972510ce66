package adminapi

import (
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cutover-dev/cutover/controlplane/deployment"
	"github.com/cutover-dev/cutover/controlplane/fleet"
	"github.com/cutover-dev/cutover/controlplane/migrate"
	"github.com/cutover-dev/cutover/controlplane/model"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

var t0 = time.Date(2026, 3, 1, 2, 0, 0, 0, time.UTC)

// TestEnvironmentDSNRedacted: the DSN an environment shows never holds its
// password, whatever form the DSN takes.
func TestEnvironmentDSNRedacted(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"/var/lib/app.db", "/var/lib/app.db"},
		{"postgres://app:s3cret@db:5432/app?sslmode=disable", "postgres://app:xxxxx@db:5432/app?sslmode=disable"},
		{"postgres://app@db/app", "postgres://app@db/app"},
		{"host=db user=app password=s3cret dbname=app", "host=db user=app password=xxxxx dbname=app"},
		{"host=db password = 'two words' dbname=app", "host=db password = xxxxx dbname=app"},
	}
	for _, tt := range tests {
		e := model.Environment{Name: "prod", Database: model.Database{Driver: "postgres", DSN: tt.in}}
		if got := environmentToProto(&e, t0).GetDatabase().GetDsn(); got != tt.want {
			t.Errorf("environmentToProto shows dsn %q as %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestEnvironmentToProto(t *testing.T) {
	tests := []struct {
		name string
		in   model.Environment
		want *cutoverv1.Environment
	}{
		{"defaults filled", model.Environment{Name: "prod", CreateTime: t0, UpdateTime: t0},
			&cutoverv1.Environment{Name: "prod", Database: &cutoverv1.Database{}, PreparedTtl: durationpb.New(96 * time.Hour),
				KeepReleases: 3, WindowOpen: true, CreateTime: timestamppb.New(t0), UpdateTime: timestamppb.New(t0)}},
		{"everything set", model.Environment{Name: "prod", TwoStage: true, PreparedTTL: time.Hour, KeepReleases: 5, StageRate: 50 << 20, PeersDisabled: true,
			Deadlines:        model.Stage2Deadlines{Commit: 30 * time.Second},
			Windows:          []string{"Mon-Fri 02:00-04:00 Europe/Lisbon"}, // t0 is a Sunday 02:00 UTC
			Database:         model.Database{Driver: "postgres", DSN: "postgres://u:p@h/d", LockTimeout: time.Second},
			DeployedVersions: map[string]model.DeployedVersion{"hello": {VersionLabel: "v2", ReleaseID: "r2", DeploymentID: "d-1", DeployTime: t0}}},
			&cutoverv1.Environment{Name: "prod", TwoStage: true, PreparedTtl: durationpb.New(time.Hour), KeepReleases: 5, StageRate: 50 << 20, PeersDisabled: true,
				Stage2Deadlines: &cutoverv1.Stage2Deadlines{Arm: durationpb.New(10 * time.Minute), Hooks: durationpb.New(10 * time.Minute), Commit: durationpb.New(30 * time.Second)},
				Windows:         []string{"Mon-Fri 02:00-04:00 Europe/Lisbon"}, NextWindowOpen: timestamppb.New(time.Date(2026, 3, 2, 2, 0, 0, 0, time.UTC)),
				NextWindow: `Mon 2026-03-02 02:00 WET (2026-03-02 02:00 UTC), window "Mon-Fri 02:00-04:00 Europe/Lisbon"`,
				Database:   &cutoverv1.Database{Driver: "postgres", Dsn: "postgres://u:xxxxx@h/d", LockTimeout: durationpb.New(time.Second)},
				DeployedVersions: map[string]*cutoverv1.DeployedVersion{"hello": {VersionLabel: "v2", ReleaseId: "r2",
					DeploymentId: "d-1", DeployTime: timestamppb.New(t0)}}}},
		{"window open now", model.Environment{Name: "prod", Windows: []string{"Sun 01:30-03:00 UTC"}},
			&cutoverv1.Environment{Name: "prod", Database: &cutoverv1.Database{}, PreparedTtl: durationpb.New(96 * time.Hour), KeepReleases: 3,
				Windows: []string{"Sun 01:30-03:00 UTC"}, WindowOpen: true, WindowClose: timestamppb.New(t0.Add(time.Hour)),
				NextWindow: `Sun 2026-03-08 01:30 UTC (2026-03-08 01:30 UTC), window "Sun 01:30-03:00 UTC"`}},
		{"always open", model.Environment{Name: "prod", Windows: []string{"Mon-Sun 00:00-24:00 UTC"}},
			&cutoverv1.Environment{Name: "prod", Database: &cutoverv1.Database{}, PreparedTtl: durationpb.New(96 * time.Hour), KeepReleases: 3,
				Windows: []string{"Mon-Sun 00:00-24:00 UTC"}, WindowOpen: true,
				NextWindow: `Mon 2026-03-02 00:00 UTC (2026-03-02 00:00 UTC), window "Mon-Sun 00:00-24:00 UTC"`}},
	}
	defaults := &cutoverv1.Stage2Deadlines{Arm: durationpb.New(10 * time.Minute), Hooks: durationpb.New(10 * time.Minute), Commit: durationpb.New(2 * time.Minute)}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.want.Stage2Deadlines == nil {
				tt.want.Stage2Deadlines = defaults
			}
			if got := environmentToProto(&tt.in, t0); !proto.Equal(got, tt.want) {
				t.Fatalf("got  %v\nwant %v", got, tt.want)
			}
		})
	}
}

func TestEnvironmentFromProto(t *testing.T) {
	in := &cutoverv1.Environment{Name: "prod", TwoStage: true, PreparedTtl: durationpb.New(time.Hour), RequireApproval: true,
		Windows: []string{"w"}, KeepReleases: 2, StageRate: 1 << 20, PeersDisabled: true, CreateTime: timestamppb.New(t0),
		Database: &cutoverv1.Database{Driver: "sqlite", Dsn: "/x.db", StatementTimeout: durationpb.New(time.Minute)}}
	got := environmentFromProto(in)
	if got.Name != "prod" || !got.TwoStage || got.PreparedTTL != time.Hour || !got.RequireApproval || got.KeepReleases != 2 || got.StageRate != 1<<20 || !got.PeersDisabled ||
		got.Windows[0] != "w" || got.Database.DSN != "/x.db" || got.Database.StatementTimeout != time.Minute || !got.CreateTime.IsZero() {
		t.Fatalf("got %+v (output-only fields must be ignored)", got)
	}
	if got := environmentFromProto(&cutoverv1.Environment{Name: "x"}); got.PreparedTTL != 0 || got.Database != (model.Database{}) {
		t.Fatalf("unset fields: %+v", got)
	}
}

func TestDeploymentToProto(t *testing.T) {
	d := &model.Deployment{ID: "d-1", Environment: "prod", State: model.Deployed, CreateTime: t0, ActivateTime: t0.Add(time.Minute),
		FinishTime: t0.Add(2 * time.Minute), SwapDuration: time.Second,
		Applications: []model.DeploymentApplication{{Name: "hello", VersionLabel: "v2", ReleaseID: "r2", PreviousReleaseID: "r1"}},
		Agents:       []model.DeploymentAgent{{Name: "fe1", State: model.AgentActive, ReleaseBytes: 10, TransferredBytes: 4, SwapTime: t0, Command: "internal"}},
		History:      []model.Transition{{State: model.Planned, Time: t0, Actor: "alice", Message: "created"}}}
	want := &cutoverv1.Deployment{Id: "d-1", Environment: "prod", State: cutoverv1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED,
		CreateTime: timestamppb.New(t0), ActivateTime: timestamppb.New(t0.Add(time.Minute)), FinishTime: timestamppb.New(t0.Add(2 * time.Minute)),
		SwapDuration: durationpb.New(time.Second), ActivationSpread: durationpb.New(0), SqlDuration: durationpb.New(0),
		Applications: []*cutoverv1.DeploymentApplication{{Name: "hello", VersionLabel: "v2", ReleaseId: "r2", PreviousReleaseId: "r1"}},
		Agents: []*cutoverv1.DeploymentAgent{{Name: "fe1", State: cutoverv1.AgentDeploymentState_AGENT_DEPLOYMENT_STATE_ACTIVE,
			ReleaseBytes: 10, TransferredBytes: 4, SwapTime: timestamppb.New(t0)}},
		History: []*cutoverv1.DeploymentTransition{{State: cutoverv1.DeploymentState_DEPLOYMENT_STATE_PLANNED, Time: timestamppb.New(t0), Actor: "alice", Message: "created"}}}
	if got := deploymentToProto(d); !proto.Equal(got, want) {
		t.Fatalf("got  %v\nwant %v", got, want)
	}
	planned := deploymentToProto(&model.Deployment{ID: "d-2", State: model.Planned})
	if planned.PrepareTime != nil || planned.ActivationSpread != nil || planned.SqlDuration != nil {
		t.Fatalf("unset times and durations must stay unset: %v", planned)
	}
}

func TestStateMapsAreComplete(t *testing.T) {
	for _, s := range []model.DeploymentState{model.Planned, model.Preparing, model.Prepared, model.Activating,
		model.Deployed, model.Failed, model.Aborted, model.Expired, model.RolledBack} {
		if deploymentStates[s] == cutoverv1.DeploymentState_DEPLOYMENT_STATE_UNSPECIFIED || "DEPLOYMENT_STATE_"+string(s) != deploymentStates[s].String() {
			t.Errorf("state %s maps to %v", s, deploymentStates[s])
		}
	}
	for _, s := range []model.AgentState{model.AgentPending, model.AgentStaging, model.AgentStaged, model.AgentActivating,
		model.AgentActive, model.AgentFailed, model.AgentRolledBack, model.AgentArmed} {
		if "AGENT_DEPLOYMENT_STATE_"+string(s) != agentStates[s].String() {
			t.Errorf("agent state %s maps to %v", s, agentStates[s])
		}
	}
}

func TestAgentToProto(t *testing.T) {
	v := fleet.AgentView{Connected: true, Agent: model.Agent{Name: "fe1", Environment: "prod", LastSeen: t0, Labels: map[string]string{"rack": "a"},
		Applications: []model.AgentApplication{{Name: "hello", RunningReleaseID: "r1", StagedReleaseIDs: []string{"r2"}}}}}
	want := &cutoverv1.Agent{Name: "fe1", Environment: "prod", Connected: true, LastSeenTime: timestamppb.New(t0), Labels: map[string]string{"rack": "a"},
		Applications: []*cutoverv1.AgentApplication{{Name: "hello", RunningReleaseId: "r1", StagedReleaseIds: []string{"r2"}}}}
	if got := agentToProto(v); !proto.Equal(got, want) {
		t.Fatalf("got  %v\nwant %v", got, want)
	}
}

func TestDescribeChange(t *testing.T) {
	planned := &model.Deployment{State: model.Planned, History: []model.Transition{{State: model.Planned, Message: "created"}}}
	preparing := &model.Deployment{State: model.Preparing, History: append(planned.History, model.Transition{State: model.Preparing, Message: "stage 1"}),
		Agents: []model.DeploymentAgent{{Name: "fe1", State: model.AgentPending}, {Name: "fe2", State: model.AgentPending}}}
	progress := &model.Deployment{State: model.Preparing, History: preparing.History,
		Agents: []model.DeploymentAgent{{Name: "fe1", State: model.AgentStaging, ReleaseBytes: 10, TransferredBytes: 4}, {Name: "fe2", State: model.AgentPending}}}
	failed := &model.Deployment{State: model.Preparing, History: preparing.History,
		Agents: []model.DeploymentAgent{{Name: "fe1", State: model.AgentStaging, ReleaseBytes: 10, TransferredBytes: 4}, {Name: "fe2", State: model.AgentFailed, Error: "disk full"}}}
	tests := []struct {
		name    string
		prev, d *model.Deployment
		want    string
	}{
		{"first event", nil, planned, "created"},
		{"state change", planned, preparing, "stage 1"},
		{"progress", preparing, progress, "agent fe1 STAGING (4 of 10 bytes)"},
		{"agent failure", progress, failed, "agent fe2 FAILED: disk full"},
		{"nothing", failed, failed, "no visible change"},
	}
	for _, tt := range tests {
		before := func(name string) *model.DeploymentAgent {
			if tt.prev == nil {
				return nil
			}
			i := slices.IndexFunc(tt.prev.Agents, func(a model.DeploymentAgent) bool { return a.Name == name })
			if i < 0 {
				return nil
			}
			return &tt.prev.Agents[i]
		}
		if got := describeChange(tt.prev, tt.d, deployment.ChangedAgents(tt.prev, tt.d), before); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestPlanToProto(t *testing.T) {
	tests := []struct {
		name string
		in   *migrate.Plan
		want *cutoverv1.DeploymentPlan
	}{
		{"no SQL", &migrate.Plan{DeploymentID: "d-1"}, &cutoverv1.DeploymentPlan{DeploymentId: "d-1"}},
		{"pending migrations", &migrate.Plan{DeploymentID: "d-2", Script: "BEGIN;\n...", Pending: []migrate.Pending{
			{Application: "hello", Version: 1, Name: "0001_a.up.sql", Checksum: "ab"},
			{Application: "hello", Version: 7, Name: "0007_idx.up.sql", Checksum: "cd", NoTransaction: true},
		}}, &cutoverv1.DeploymentPlan{DeploymentId: "d-2", Script: "BEGIN;\n...", PendingMigrations: []*cutoverv1.PendingMigration{
			{Application: "hello", Version: 1, Name: "0001_a.up.sql", Checksum: "ab"},
			{Application: "hello", Version: 7, Name: "0007_idx.up.sql", Checksum: "cd", NoTransaction: true},
		}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := planToProto(tt.in.DeploymentID, tt.in, model.Stage2Deadlines{}); !proto.Equal(got, tt.want) {
				t.Errorf("planToProto = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestDeadlinesToProto(t *testing.T) {
	if got := deadlinesToProto(model.Stage2Deadlines{}); got != nil {
		t.Errorf("unset deadlines = %v, want nil", got)
	}
	dl := model.Stage2Deadlines{Arm: time.Minute, Hooks: 2 * time.Minute, Commit: 3 * time.Second}
	if got := deadlinesFromProto(deadlinesToProto(dl)); got != dl {
		t.Errorf("round trip = %+v, want %+v", got, dl)
	}
	d := &model.Deployment{ID: "d-4", State: model.Activating, Step: model.StepCommit, StepTime: t0, Deadlines: dl,
		Agents: []model.DeploymentAgent{{Name: "fe-1", State: model.AgentFailed, Unanswered: "commit"}}}
	got := deploymentToProto(d)
	if got.GetStep() != "commit" || !got.GetStepDeadline().AsTime().Equal(t0.Add(3*time.Second)) ||
		got.GetStage2Deadlines().GetCommit().AsDuration() != 3*time.Second || got.GetAgents()[0].GetUnanswered() != "commit" {
		t.Errorf("deploymentToProto = %v", got)
	}
	d.RollingBack = true
	if got := deploymentToProto(d); got.GetStep() != "swap-back" {
		t.Errorf("step while swapping back = %q", got.GetStep())
	}
}

func TestDeploymentToProtoWindowsAndApproval(t *testing.T) {
	d := &model.Deployment{ID: "d-3", State: model.Prepared, ScheduledTime: t0, PredictedStage2: time.Minute,
		Approval: &model.Approval{Actor: "bob", Time: t0, Comment: "ok"}}
	got := deploymentToProto(d)
	want := &cutoverv1.Deployment{Id: "d-3", State: cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED, ScheduledTime: timestamppb.New(t0),
		PredictedStage2Duration: durationpb.New(time.Minute), Approval: &cutoverv1.Approval{Actor: "bob", Time: timestamppb.New(t0), Comment: "ok"}}
	if !proto.Equal(got, want) {
		t.Fatalf("got  %v\nwant %v", got, want)
	}
	d.State = model.Deployed // the prediction is shown while it matters: PREPARED
	if got := deploymentToProto(d); got.PredictedStage2Duration != nil {
		t.Fatalf("prediction of a deployed deployment: %v", got.PredictedStage2Duration)
	}
}

func TestDeploymentToProtoHooksAndPackage(t *testing.T) {
	d := &model.Deployment{ID: "d-4", State: model.Deployed, ArmDuration: time.Second, HooksDuration: 2 * time.Second, RequirePrepared: true,
		Agents: []model.DeploymentAgent{{Name: "fe1", State: model.AgentArmed, Hooks: []model.HookResult{
			{HookRef: model.HookRef{Application: "shop", Kind: "before_activate", Index: 1}, Command: "suspend", ExitCode: 3, Duration: time.Second, Output: "busy", Error: "exited with status 3"}}}},
		Package: &model.PackageResult{Application: "shop", Ran: true, Changed: []string{"mobile/a.js"}, SizeBytes: 9, Duration: time.Second}}
	got := deploymentToProto(d)
	want := &cutoverv1.Deployment{Id: "d-4", State: cutoverv1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED,
		ArmDuration: durationpb.New(time.Second), HooksDuration: durationpb.New(2 * time.Second), RequirePrepared: true,
		ActivationSpread: durationpb.New(0), SqlDuration: durationpb.New(0), SwapDuration: durationpb.New(0),
		Agents: []*cutoverv1.DeploymentAgent{{Name: "fe1", State: cutoverv1.AgentDeploymentState_AGENT_DEPLOYMENT_STATE_ARMED, Hooks: []*cutoverv1.HookResult{
			{Application: "shop", Kind: cutoverv1.HookKind_HOOK_KIND_BEFORE_ACTIVATE, Index: 1, Command: "suspend", ExitCode: 3, Duration: durationpb.New(time.Second), Output: "busy", Error: "exited with status 3"}}}},
		Package: &cutoverv1.DeploymentPackage{Application: "shop", Ran: true, Changed: []string{"mobile/a.js"}, SizeBytes: 9, Duration: durationpb.New(time.Second)}}
	if !proto.Equal(got, want) {
		t.Fatalf("got  %v\nwant %v", got, want)
	}
}

func TestContinueAndStartOptions(t *testing.T) {
	tests := []struct {
		name string
		got  deployment.ContinueOptions
		want deployment.ContinueOptions
	}{
		{"continue plain", continueOptions(&cutoverv1.ContinueDeploymentRequest{Id: "d-1"}), deployment.ContinueOptions{}},
		{"continue forced", continueOptions(&cutoverv1.ContinueDeploymentRequest{Force: true, ForceReason: "hotfix"}),
			deployment.ContinueOptions{Force: true, ForceReason: "hotfix"}},
		{"continue at window", continueOptions(&cutoverv1.ContinueDeploymentRequest{AtWindow: true}), deployment.ContinueOptions{AtWindow: true}},
		{"continue require prepared", continueOptions(&cutoverv1.ContinueDeploymentRequest{RequirePrepared: true}), deployment.ContinueOptions{RequirePrepared: true}},
		{"start forced", startOptions(&cutoverv1.StartDeploymentRequest{Force: true, ForceReason: "r"}), deployment.ContinueOptions{Force: true, ForceReason: "r"}},
		{"start plain", startOptions(&cutoverv1.StartDeploymentRequest{}), deployment.ContinueOptions{}},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: %+v, want %+v", tt.name, tt.got, tt.want)
		}
	}
}

func TestStopResultsToProto(t *testing.T) {
	got := stopResultsToProto([]fleet.StopResult{{Agent: "fe1"}, {Agent: "fe2", Error: "did not answer"}})
	if len(got.GetResults()) != 2 || got.GetResults()[0].GetAgent() != "fe1" || got.GetResults()[0].GetError() != "" ||
		got.GetResults()[1].GetAgent() != "fe2" || got.GetResults()[1].GetError() != "did not answer" {
		t.Errorf("results = %v", got)
	}
	if got := stopResultsToProto(nil); len(got.GetResults()) != 0 {
		t.Errorf("no results = %v", got)
	}
}
