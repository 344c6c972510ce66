package agentapi

import (
	"reflect"
	"testing"
	"time"

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
	c := commandToProto(fleet.Command{Kind: fleet.Commit, ID: "c", DeploymentID: "d-1", Hold: true}).GetCommit()
	if c == nil || !c.GetHold() {
		t.Fatalf("commit with hold: %v", c)
	}
	for _, abort := range []bool{false, true} {
		f := commandToProto(fleet.Command{Kind: fleet.Finish, ID: "c", DeploymentID: "d-1", Abort: abort}).GetFinish()
		if f == nil || f.GetCommandId() != "c" || f.GetDeploymentId() != "d-1" || f.GetAbort() != abort {
			t.Fatalf("finish (abort %v): %v", abort, f)
		}
	}
}

func TestCommandToProtoStopApp(t *testing.T) {
	c := commandToProto(fleet.Command{Kind: fleet.StopApp, ID: "stop.hello.fe1.x", Applications: []string{"hello"}}).GetStopApp()
	if c == nil || c.GetCommandId() != "stop.hello.fe1.x" || c.GetApplication() != "hello" {
		t.Fatalf("stop_app: %v", c)
	}
}
