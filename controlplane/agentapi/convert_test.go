package agentapi

import (
	"reflect"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cutover-dev/cutover/controlplane/fleet"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

func TestReportFromProto(t *testing.T) {
	when := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	tests := []struct {
		name string
		in   *cutoverv1.CommandReport
		want fleet.Report
	}{
		{"progress of a run",
			&cutoverv1.CommandReport{CommandId: "c", DeploymentId: "d-1", Outcome: cutoverv1.CommandOutcome_COMMAND_OUTCOME_PROGRESS,
				ReleaseBytes: 10, TransferredBytes: 4, RunId: "r1"},
			fleet.Report{CommandID: "c", DeploymentID: "d-1", Outcome: fleet.Progress, ReleaseBytes: 10, TransferredBytes: 4, Run: "r1"}},
		{"an older agent: no run id",
			&cutoverv1.CommandReport{CommandId: "c", Outcome: cutoverv1.CommandOutcome_COMMAND_OUTCOME_DONE, TransferredBytes: 4, ReusedBytes: 6},
			fleet.Report{CommandID: "c", Outcome: fleet.Done, TransferredBytes: 4, ReusedBytes: 6}},
		{"failed after a swap",
			&cutoverv1.CommandReport{CommandId: "c", Outcome: cutoverv1.CommandOutcome_COMMAND_OUTCOME_FAILED, Error: "boom",
				SwapTime: timestamppb.New(when), SwappedBack: true},
			fleet.Report{CommandID: "c", Outcome: fleet.CommandFailed, Error: "boom", SwapTime: when, SwappedBack: true}},
		{"a held commit ready",
			&cutoverv1.CommandReport{CommandId: "c", Outcome: cutoverv1.CommandOutcome_COMMAND_OUTCOME_PROGRESS, Ready: true},
			fleet.Report{CommandID: "c", Outcome: fleet.Progress, Ready: true}},
		{"overlap on done",
			&cutoverv1.CommandReport{CommandId: "c", Outcome: cutoverv1.CommandOutcome_COMMAND_OUTCOME_DONE, Overlap: durationpb.New(40 * time.Millisecond)},
			fleet.Report{CommandID: "c", Outcome: fleet.Done, Overlap: 40 * time.Millisecond}},
		{"a negative overlap is dropped",
			&cutoverv1.CommandReport{CommandId: "c", Outcome: cutoverv1.CommandOutcome_COMMAND_OUTCOME_DONE, Overlap: durationpb.New(-time.Second)},
			fleet.Report{CommandID: "c", Outcome: fleet.Done}},
		{"a rollback by command",
			&cutoverv1.CommandReport{CommandId: "c", DeploymentId: "d-1", RollbackAttempt: 4, Outcome: cutoverv1.CommandOutcome_COMMAND_OUTCOME_DONE},
			fleet.Report{CommandID: "c", DeploymentID: "d-1", RollbackAttempt: 4, Outcome: fleet.Done}},
		{"a rollback by command from an agent of revision 0: the packed id",
			&cutoverv1.CommandReport{CommandId: "c", DeploymentId: "d-1~rollback.4", Outcome: cutoverv1.CommandOutcome_COMMAND_OUTCOME_DONE},
			fleet.Report{CommandID: "c", DeploymentID: "d-1", RollbackAttempt: 4, Outcome: fleet.Done}},
		{"unspecified outcome is progress",
			&cutoverv1.CommandReport{CommandId: "c"},
			fleet.Report{CommandID: "c", Outcome: fleet.Progress}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := reportFromProto(tt.in); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestCommandToProtoHoldAndFinish(t *testing.T) {
	c := commandToProto(fleet.Command{Kind: fleet.Commit, ID: "c", DeploymentID: "d-1", Hold: true}, attemptsRevision).GetCommit()
	if c == nil || !c.GetHold() {
		t.Fatalf("commit with hold: %v", c)
	}
	for _, abort := range []bool{false, true} {
		f := commandToProto(fleet.Command{Kind: fleet.Finish, ID: "c", DeploymentID: "d-1", Abort: abort}, attemptsRevision).GetFinish()
		if f == nil || f.GetCommandId() != "c" || f.GetDeploymentId() != "d-1" || f.GetAbort() != abort {
			t.Fatalf("finish (abort %v): %v", abort, f)
		}
	}
}

func TestCommandToProtoStageSwarm(t *testing.T) {
	for _, tc := range []struct {
		name  string
		swarm *fleet.Swarm
		want  *cutoverv1.Swarm
	}{
		{name: "none"},
		{name: "owner", swarm: &fleet.Swarm{Slices: 3, Slice: 1, Owners: []string{"fe1", "", "fe3"}},
			want: &cutoverv1.Swarm{Slices: 3, Slice: 1, Owners: []string{"fe1", "", "fe3"}}},
		{name: "no slice", swarm: &fleet.Swarm{Slices: 2, Slice: -1, Owners: []string{"fe1", "fe2"}},
			want: &cutoverv1.Swarm{Slices: 2, Slice: -1, Owners: []string{"fe1", "fe2"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := commandToProto(fleet.Command{Kind: fleet.Stage, ID: "c", DeploymentID: "d-1", Swarm: tc.swarm,
				Peers: []fleet.Peer{{Name: "fe1", Address: "10.0.0.1:7071"}}}, attemptsRevision).GetStage()
			if !proto.Equal(c.GetSwarm(), tc.want) {
				t.Errorf("swarm = %v, want %v", c.GetSwarm(), tc.want)
			}
			if len(c.GetPeers()) != 1 || c.GetPeers()[0].GetAddress() != "10.0.0.1:7071" {
				t.Errorf("peers = %v", c.GetPeers())
			}
		})
	}
}

func TestCommandToProtoStopApp(t *testing.T) {
	c := commandToProto(fleet.Command{Kind: fleet.StopApp, ID: "stop.hello.fe1.x", Applications: []string{"hello"}}, attemptsRevision).GetStopApp()
	if c == nil || c.GetCommandId() != "stop.hello.fe1.x" || c.GetApplication() != "hello" {
		t.Fatalf("stop_app: %v", c)
	}
}

// commandDeployment is the deployment_id and rollback_attempt a command
// message carries.
type commandDeployment interface {
	GetDeploymentId() string
	GetRollbackAttempt() uint32
}

// TestCommandToProtoRollbackAttempt: an agent of revision 1 gets the
// deployment's own id and the attempt; an agent of revision 0 (the
// previous release) gets the packed id it reads, and no attempt.
func TestCommandToProtoRollbackAttempt(t *testing.T) {
	of := func(m *cutoverv1.ConnectResponse) commandDeployment {
		switch x := m.GetCommand().(type) {
		case *cutoverv1.ConnectResponse_Arm:
			return x.Arm
		case *cutoverv1.ConnectResponse_Commit:
			return x.Commit
		case *cutoverv1.ConnectResponse_Finish:
			return x.Finish
		case *cutoverv1.ConnectResponse_Disarm:
			return x.Disarm
		case *cutoverv1.ConnectResponse_Hooks:
			return x.Hooks
		}
		return nil
	}
	tests := []struct {
		name    string
		attempt int
		rev     uint32
		wantID  string
		wantN   uint32
	}{
		{"own stage 2, revision 1", 0, attemptsRevision, "d-1", 0},
		{"own stage 2, revision 0", 0, 0, "d-1", 0},
		{"rollback by command, revision 1", 3, attemptsRevision, "d-1", 3},
		{"rollback by command, revision 0", 3, 0, "d-1~rollback.3", 0},
	}
	for _, tt := range tests {
		for _, kind := range []fleet.CommandKind{fleet.Arm, fleet.Commit, fleet.Finish, fleet.Disarm, fleet.Hooks} {
			t.Run(tt.name+"/"+string(kind), func(t *testing.T) {
				c := of(commandToProto(fleet.Command{Kind: kind, ID: "c", DeploymentID: "d-1", RollbackAttempt: tt.attempt}, tt.rev))
				if c == nil || c.GetDeploymentId() != tt.wantID || c.GetRollbackAttempt() != tt.wantN {
					t.Errorf("got %v; want deployment_id %q, rollback_attempt %d", c, tt.wantID, tt.wantN)
				}
			})
		}
	}
}
