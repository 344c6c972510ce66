package agentapi

import (
	"reflect"
	"testing"
	"time"

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
