package rpcerr

import (
	"errors"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cutover-dev/cutover/pkg/errkind"
)

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		err  error
		code codes.Code
		msg  string
	}{
		{"not found", fmt.Errorf("deployment %q: %w", "d-1", errkind.NotFound), codes.NotFound, `deployment "d-1"`},
		{"precondition", fmt.Errorf("wrong state: %w", errkind.FailedPrecondition), codes.FailedPrecondition, "wrong state"},
		{"invalid", errkind.New(errkind.InvalidArgument, "bad name"), codes.InvalidArgument, "bad name"},
		{"unauthenticated", fmt.Errorf("no token: %w", errkind.Unauthenticated), codes.Unauthenticated, "no token"},
		{"denied", fmt.Errorf("viewer may not: %w", errkind.PermissionDenied), codes.PermissionDenied, "viewer may not"},
		{"too large", fmt.Errorf("release of 200001 files: %w", errkind.ResourceExhausted), codes.ResourceExhausted, "release of 200001 files"},
		{"unknown is internal", errors.New("disk on fire"), codes.Internal, "internal error; the controller's log has the details"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := status.Convert(ToStatus(nil, tt.err))
			if st.Code() != tt.code || st.Message() != tt.msg {
				t.Fatalf("ToStatus = %v %q, want %v %q", st.Code(), st.Message(), tt.code, tt.msg)
			}
			back := FromStatus(st.Err())
			if back.Error() != tt.msg {
				t.Errorf("FromStatus message = %q, want %q", back.Error(), tt.msg)
			}
			if tt.code != codes.Internal && Code(back) != tt.code {
				t.Errorf("FromStatus kind maps to %v, want %v", Code(back), tt.code)
			}
		})
	}
	if ToStatus(nil, nil) != nil || FromStatus(nil) != nil {
		t.Fatal("nil must stay nil")
	}
}
