package storecodec

import (
	"errors"
	"reflect"
	"testing"

	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/pkg/errkind"
)

// FuzzDecode: whatever bytes a damaged file holds, every decoder returns
// a record or a DataLoss error, never panics; a record it returns encodes
// and decodes to itself.
func FuzzDecode(f *testing.F) {
	for _, seed := range [][]byte{nil, {0x0a, 0x03, 'd', '-', '1', 0x20, 0x05}, {0x5a, 0x02, 0x08, 0x01}, {0xff}} {
		f.Add(seed)
	}
	if b, err := EncodeDeployment(&model.Deployment{ID: "d-1", State: model.Prepared, Approval: &model.Approval{Actor: "bob"}}); err == nil {
		f.Add(b)
	}
	if b, err := EncodeDeploymentAgent(&model.DeploymentAgent{Name: "fe", State: model.AgentArmed, Runs: []model.TransferRun{{Run: "r", Bytes: 1}}}); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fuzzOne(t, b, EncodeDeployment, DecodeDeployment)
		fuzzOne(t, b, EncodeDeploymentAgent, DecodeDeploymentAgent)
		fuzzOne(t, b, EncodeEnvironment, DecodeEnvironment)
		fuzzOne(t, b, EncodeAgent, DecodeAgent)
		fuzzOne(t, b, EncodeEnrollment, DecodeEnrollment)
		fuzzOne(t, b, EncodeAuditRecord, DecodeAuditRecord)
	})
}

func fuzzOne[V any](t *testing.T, b []byte, enc func(*V) ([]byte, error), dec func([]byte) (*V, error)) {
	t.Helper()
	v, err := dec(b)
	if err != nil {
		if !errors.Is(err, errkind.DataLoss) {
			t.Fatalf("decode %T: error %v is not DataLoss", v, err)
		}
		return
	}
	again, err := enc(v)
	if err != nil {
		t.Fatalf("a decoded %T does not encode: %v", v, err)
	}
	w, err := dec(again)
	if err != nil || !reflect.DeepEqual(w, v) {
		t.Fatalf("%T changes on a second round trip: %+v\n→ %+v (%v)", v, v, w, err)
	}
}
