package session

import (
	"reflect"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/agent/peer"
	"github.com/cutover-dev/cutover/pkg/appspec"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
	"google.golang.org/protobuf/types/known/durationpb"
)

func TestCommandFromProto(t *testing.T) {
	refs := []*cutoverv1.ReleaseRef{{Application: "a", ReleaseId: "r"}}
	rels := []Release{{Application: "a", ID: "r"}}
	tests := []struct {
		name string
		in   *cutoverv1.ConnectResponse
		want Command
		ok   bool
	}{
		{"stage", &cutoverv1.ConnectResponse{Command: &cutoverv1.ConnectResponse_Stage{Stage: &cutoverv1.StageCommand{CommandId: "c", DeploymentId: "d", Releases: refs}}},
			Command{Kind: KindStage, ID: "c", Deployment: "d", Releases: rels}, true},
		{"stage capped", &cutoverv1.ConnectResponse{Command: &cutoverv1.ConnectResponse_Stage{Stage: &cutoverv1.StageCommand{CommandId: "c", DeploymentId: "d", Releases: refs, StageRate: 50 << 20}}},
			Command{Kind: KindStage, ID: "c", Deployment: "d", Releases: rels, StageRate: 50 << 20}, true},
		{"stage in a swarm", &cutoverv1.ConnectResponse{Command: &cutoverv1.ConnectResponse_Stage{Stage: &cutoverv1.StageCommand{CommandId: "c", DeploymentId: "d", Releases: refs,
			Peers: []*cutoverv1.Peer{{Name: "fe2", Address: "10.0.0.2:7071"}}, Swarm: &cutoverv1.Swarm{Slices: 2, Slice: 0, Owners: []string{"", "fe2"}}}}},
			Command{Kind: KindStage, ID: "c", Deployment: "d", Releases: rels, Peers: []peer.Peer{{Name: "fe2", Address: "10.0.0.2:7071"}},
				Swarm: &peer.Swarm{Slices: 2, Slice: 0, Owners: []string{"", "fe2"}}}, true},
		{"stage, an empty swarm", &cutoverv1.ConnectResponse{Command: &cutoverv1.ConnectResponse_Stage{Stage: &cutoverv1.StageCommand{CommandId: "c", DeploymentId: "d", Releases: refs, Swarm: &cutoverv1.Swarm{}}}},
			Command{Kind: KindStage, ID: "c", Deployment: "d", Releases: rels}, true},
		{"arm with peers", &cutoverv1.ConnectResponse{Command: &cutoverv1.ConnectResponse_Arm{Arm: &cutoverv1.ArmCommand{CommandId: "c", DeploymentId: "d", Releases: refs,
			Peers: []*cutoverv1.Peer{{Name: "fe2", Address: "10.0.0.2:7071", Holds: true}}}}},
			Command{Kind: KindArm, ID: "c", Deployment: "d", Releases: rels, Peers: []peer.Peer{{Name: "fe2", Address: "10.0.0.2:7071", Holds: true}}}, true},
		{"arm capped", &cutoverv1.ConnectResponse{Command: &cutoverv1.ConnectResponse_Arm{Arm: &cutoverv1.ArmCommand{CommandId: "c", DeploymentId: "d", Releases: refs, StageRate: 1 << 20}}},
			Command{Kind: KindArm, ID: "c", Deployment: "d", Releases: rels, StageRate: 1 << 20}, true},
		{"arm", &cutoverv1.ConnectResponse{Command: &cutoverv1.ConnectResponse_Arm{Arm: &cutoverv1.ArmCommand{CommandId: "c", DeploymentId: "d", Releases: refs, VerifyOnly: true}}},
			Command{Kind: KindArm, ID: "c", Deployment: "d", Releases: rels, VerifyOnly: true}, true},
		{"commit", &cutoverv1.ConnectResponse{Command: &cutoverv1.ConnectResponse_Commit{Commit: &cutoverv1.CommitCommand{CommandId: "c", DeploymentId: "d", Releases: refs,
			Validate: []*cutoverv1.HookRef{{Application: "a", Kind: cutoverv1.HookKind_HOOK_KIND_VALIDATE, Index: 1}}, KeepReleases: 5}}},
			Command{Kind: KindCommit, ID: "c", Deployment: "d", Releases: rels, Hooks: []appspec.HookRef{{Application: "a", Kind: appspec.Validate, Index: 1}}, KeepReleases: 5}, true},
		{"held commit", &cutoverv1.ConnectResponse{Command: &cutoverv1.ConnectResponse_Commit{Commit: &cutoverv1.CommitCommand{CommandId: "c", DeploymentId: "d", Hold: true}}},
			Command{Kind: KindCommit, ID: "c", Deployment: "d", Releases: []Release{}, Hold: true}, true},
		{"finish", &cutoverv1.ConnectResponse{Command: &cutoverv1.ConnectResponse_Finish{Finish: &cutoverv1.FinishCommand{CommandId: "c", DeploymentId: "d", Abort: true}}},
			Command{Kind: KindFinish, ID: "c", Deployment: "d", Abort: true}, true},
		{"disarm", &cutoverv1.ConnectResponse{Command: &cutoverv1.ConnectResponse_Disarm{Disarm: &cutoverv1.DisarmCommand{CommandId: "c", DeploymentId: "d"}}},
			Command{Kind: KindDisarm, ID: "c", Deployment: "d"}, true},
		{"hooks", &cutoverv1.ConnectResponse{Command: &cutoverv1.ConnectResponse_Hooks{Hooks: &cutoverv1.HooksCommand{CommandId: "c", DeploymentId: "d", Releases: refs,
			Hooks: []*cutoverv1.HookRef{{Application: "a", Kind: cutoverv1.HookKind_HOOK_KIND_AFTER_ACTIVATE}}}}},
			Command{Kind: KindHooks, ID: "c", Deployment: "d", Releases: rels, Hooks: []appspec.HookRef{{Application: "a", Kind: appspec.AfterActivate}}}, true},
		{"stop app", &cutoverv1.ConnectResponse{Command: &cutoverv1.ConnectResponse_StopApp{StopApp: &cutoverv1.StopAppCommand{CommandId: "c", Application: "hello"}}},
			Command{Kind: KindStopApp, ID: "c", Applications: []string{"hello"}}, true},
		{"rollback", &cutoverv1.ConnectResponse{Command: &cutoverv1.ConnectResponse_Rollback{Rollback: &cutoverv1.RollbackCommand{CommandId: "c", DeploymentId: "d", Applications: []string{"a"}}}},
			Command{Kind: KindRollback, ID: "c", Deployment: "d", Applications: []string{"a"}}, true},
		{"drop", &cutoverv1.ConnectResponse{Command: &cutoverv1.ConnectResponse_Drop{Drop: &cutoverv1.DropCommand{CommandId: "c", DeploymentId: "d", Releases: refs}}},
			Command{Kind: KindDrop, ID: "c", Deployment: "d", Releases: rels}, true},
		{"rollback by command: arm", &cutoverv1.ConnectResponse{Command: &cutoverv1.ConnectResponse_Arm{Arm: &cutoverv1.ArmCommand{CommandId: "c", DeploymentId: "d-2", RollbackAttempt: 5, Releases: refs, VerifyOnly: true}}},
			Command{Kind: KindArm, ID: "c", Deployment: "d-2", RollbackAttempt: 5, Releases: rels, VerifyOnly: true}, true},
		{"rollback by command: commit", &cutoverv1.ConnectResponse{Command: &cutoverv1.ConnectResponse_Commit{Commit: &cutoverv1.CommitCommand{CommandId: "c", DeploymentId: "d-2", RollbackAttempt: 5}}},
			Command{Kind: KindCommit, ID: "c", Deployment: "d-2", RollbackAttempt: 5, Releases: []Release{}}, true},
		{"rollback by command: finish", &cutoverv1.ConnectResponse{Command: &cutoverv1.ConnectResponse_Finish{Finish: &cutoverv1.FinishCommand{CommandId: "c", DeploymentId: "d-2", RollbackAttempt: 5}}},
			Command{Kind: KindFinish, ID: "c", Deployment: "d-2", RollbackAttempt: 5}, true},
		{"rollback by command: disarm", &cutoverv1.ConnectResponse{Command: &cutoverv1.ConnectResponse_Disarm{Disarm: &cutoverv1.DisarmCommand{CommandId: "c", DeploymentId: "d-2", RollbackAttempt: 5}}},
			Command{Kind: KindDisarm, ID: "c", Deployment: "d-2", RollbackAttempt: 5}, true},
		{"rollback by command: hooks", &cutoverv1.ConnectResponse{Command: &cutoverv1.ConnectResponse_Hooks{Hooks: &cutoverv1.HooksCommand{CommandId: "c", DeploymentId: "d-2", RollbackAttempt: 5}}},
			Command{Kind: KindHooks, ID: "c", Deployment: "d-2", RollbackAttempt: 5, Releases: []Release{}}, true},
		// A controller of the previous release packs the attempt into the id.
		{"rollback by command from a previous controller: arm", &cutoverv1.ConnectResponse{Command: &cutoverv1.ConnectResponse_Arm{Arm: &cutoverv1.ArmCommand{CommandId: "c", DeploymentId: "d-2~rollback.5", Releases: refs, VerifyOnly: true}}},
			Command{Kind: KindArm, ID: "c", Deployment: "d-2", RollbackAttempt: 5, Releases: rels, VerifyOnly: true}, true},
		{"rollback by command from a previous controller: disarm", &cutoverv1.ConnectResponse{Command: &cutoverv1.ConnectResponse_Disarm{Disarm: &cutoverv1.DisarmCommand{CommandId: "c", DeploymentId: "d-2~rollback.5"}}},
			Command{Kind: KindDisarm, ID: "c", Deployment: "d-2", RollbackAttempt: 5}, true},
		{"unknown", &cutoverv1.ConnectResponse{}, Command{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := commandFromProto(tt.in)
			if ok != tt.ok || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, %v; want %+v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestReportToProto(t *testing.T) {
	when := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	tests := []struct {
		name string
		in   Report
		want *cutoverv1.CommandReport
	}{
		{"progress", Report{CommandID: "c", Deployment: "d", Outcome: Progress, ReleaseBytes: 5, TransferredBytes: 2, Run: "r1"},
			&cutoverv1.CommandReport{CommandId: "c", DeploymentId: "d", Outcome: cutoverv1.CommandOutcome_COMMAND_OUTCOME_PROGRESS, ReleaseBytes: 5, TransferredBytes: 2, RunId: "r1"}},
		{"rollback by command", Report{CommandID: "c", Deployment: "d-2", RollbackAttempt: 5, Outcome: Done},
			&cutoverv1.CommandReport{CommandId: "c", DeploymentId: "d-2", RollbackAttempt: 5, Outcome: cutoverv1.CommandOutcome_COMMAND_OUTCOME_DONE}},
		{"ready", Report{CommandID: "c", Outcome: Progress, Ready: true},
			&cutoverv1.CommandReport{CommandId: "c", Outcome: cutoverv1.CommandOutcome_COMMAND_OUTCOME_PROGRESS, Ready: true}},
		{"overlap", Report{CommandID: "c", Outcome: Done, Overlap: 3 * time.Millisecond},
			&cutoverv1.CommandReport{CommandId: "c", Outcome: cutoverv1.CommandOutcome_COMMAND_OUTCOME_DONE, Overlap: durationpb.New(3 * time.Millisecond)}},
		{"failed after swap", Report{CommandID: "c", Outcome: Failed, Error: "boom", SwapTime: when, SwappedBack: true},
			&cutoverv1.CommandReport{CommandId: "c", Outcome: cutoverv1.CommandOutcome_COMMAND_OUTCOME_FAILED, Error: "boom", SwappedBack: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := reportToProto(tt.in).GetReport()
			if (got.GetSwapTime() != nil) != !tt.in.SwapTime.IsZero() || (got.GetSwapTime() != nil && !got.GetSwapTime().AsTime().Equal(when)) {
				t.Errorf("swap_time = %v, want %v", got.GetSwapTime(), tt.in.SwapTime)
			}
			got.SwapTime = nil
			if got.String() != tt.want.String() {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}
