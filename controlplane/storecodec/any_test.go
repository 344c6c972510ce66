package storecodec

import (
	"errors"
	"reflect"
	"testing"

	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/pkg/errkind"
)

// TestEncodeAny: Encode and Decode give the bytes and values of the typed
// functions, for every record stored as one value.
func TestEncodeAny(t *testing.T) {
	for _, tc := range []struct {
		v, empty any
	}{
		{filled[model.Environment](t), new(model.Environment)},
		{filled[model.Application](t), new(model.Application)},
		{filled[model.Release](t), new(model.Release)},
		{filled[model.Agent](t), new(model.Agent)},
		{filled[model.OperatorToken](t), new(model.OperatorToken)},
		{filled[model.JoinToken](t), new(model.JoinToken)},
		{filled[model.Enrollment](t), new(model.Enrollment)},
		{filled[model.AuditRecord](t), new(model.AuditRecord)},
		{filled[model.DeploymentAgent](t), new(model.DeploymentAgent)},
	} {
		t.Run(reflect.TypeOf(tc.v).Elem().Name(), func(t *testing.T) {
			b, err := Encode(tc.v)
			if err != nil {
				t.Fatal(err)
			}
			if err := Decode(b, tc.empty); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(tc.empty, tc.v) {
				t.Errorf("Decode(Encode(v)) = %+v, want %+v", tc.empty, tc.v)
			}
			if err := Decode([]byte{0xff}, tc.empty); !errors.Is(err, errkind.DataLoss) {
				t.Errorf("Decode of garbage: err = %v, want DataLoss", err)
			}
		})
	}
}

func TestEncodeAnyRefuses(t *testing.T) {
	for _, v := range []any{&model.Deployment{ID: "d-1"}, model.Environment{}, "text", nil, (*model.Agent)(nil)} {
		if _, err := Encode(v); !errors.Is(err, errkind.InvalidArgument) {
			t.Errorf("Encode(%T): err = %v, want InvalidArgument", v, err)
		}
		if err := Decode(nil, v); !errors.Is(err, errkind.InvalidArgument) {
			t.Errorf("Decode(%T): err = %v, want InvalidArgument", v, err)
		}
	}
}
