package session

import (
	"reflect"
	"testing"
	"time"

	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
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
		{"activate", &cutoverv1.ConnectResponse{Command: &cutoverv1.ConnectResponse_Activate{Activate: &cutoverv1.ActivateCommand{CommandId: "c", DeploymentId: "d", Releases: refs}}},
			Command{Kind: KindActivate, ID: "c", Deployment: "d", Releases: rels}, true},
		{"rollback", &cutoverv1.ConnectResponse{Command: &cutoverv1.ConnectResponse_Rollback{Rollback: &cutoverv1.RollbackCommand{CommandId: "c", DeploymentId: "d", Applications: []string{"a"}}}},
			Command{Kind: KindRollback, ID: "c", Deployment: "d", Applications: []string{"a"}}, true},
		{"drop", &cutoverv1.ConnectResponse{Command: &cutoverv1.ConnectResponse_Drop{Drop: &cutoverv1.DropCommand{CommandId: "c", DeploymentId: "d", Releases: refs}}},
			Command{Kind: KindDrop, ID: "c", Deployment: "d", Releases: rels}, true},
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
		{"progress", Report{CommandID: "c", Deployment: "d", Outcome: Progress, ReleaseBytes: 5, TransferredBytes: 2},
			&cutoverv1.CommandReport{CommandId: "c", DeploymentId: "d", Outcome: cutoverv1.CommandOutcome_COMMAND_OUTCOME_PROGRESS, ReleaseBytes: 5, TransferredBytes: 2}},
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
