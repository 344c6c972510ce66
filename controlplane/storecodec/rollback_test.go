package storecodec

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/cutover-dev/cutover/controlplane/model"
	storagev1 "github.com/cutover-dev/cutover/proto/cutover/storage/v1"
)

// TestRollbackAttemptOfOlderRecords: a deployment record that a controller
// before rollback_attempt wrote holds only rollback_key ("<id>~rollback.<n>");
// it decodes to the attempt. Records written today carry both fields, so
// that a controller of the previous version sharing the store reads them.
func TestRollbackAttemptOfOlderRecords(t *testing.T) {
	tests := []struct {
		name   string
		stored *storagev1.Deployment
		want   int
	}{
		{"rollback_key only (previous controller)", &storagev1.Deployment{Id: "d-2", RollbackKey: "d-2~rollback.7"}, 7},
		{"rollback_attempt only", &storagev1.Deployment{Id: "d-2", RollbackAttempt: 3}, 3},
		{"both: the attempt wins", &storagev1.Deployment{Id: "d-2", RollbackAttempt: 4, RollbackKey: "d-2~rollback.3"}, 4},
		{"neither", &storagev1.Deployment{Id: "d-2"}, 0},
		{"a key of another deployment is ignored", &storagev1.Deployment{Id: "d-2", RollbackKey: "d-9~rollback.1"}, 0},
		{"not a packed key", &storagev1.Deployment{Id: "d-2", RollbackKey: "d-2"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.stored.State = storagev1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED
			b, err := proto.Marshal(tt.stored)
			if err != nil {
				t.Fatal(err)
			}
			d, err := DecodeDeployment(b)
			if err != nil {
				t.Fatal(err)
			}
			if d.RollbackAttempt != tt.want {
				t.Errorf("RollbackAttempt = %d, want %d", d.RollbackAttempt, tt.want)
			}
		})
	}
}

func TestRollbackKeyWrittenForThePreviousController(t *testing.T) {
	for _, tt := range []struct {
		attempt int
		key     string
	}{{0, ""}, {5, "d-2~rollback.5"}} {
		b, err := EncodeDeployment(&model.Deployment{ID: "d-2", State: model.Deployed, RollbackAttempt: tt.attempt})
		if err != nil {
			t.Fatal(err)
		}
		var m storagev1.Deployment
		if err := proto.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		if int(m.GetRollbackAttempt()) != tt.attempt || m.GetRollbackKey() != tt.key {
			t.Errorf("attempt %d stored as rollback_attempt %d, rollback_key %q; want %q", tt.attempt, m.GetRollbackAttempt(), m.GetRollbackKey(), tt.key)
		}
	}
}
