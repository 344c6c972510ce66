package rpcerr

import (
	"errors"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cutover-dev/cutover/pkg/errkind"
)

func TestNotLeaderRoundTrip(t *testing.T) {
	for _, leader := range []string{"ctl-2.example:7070", ""} {
		err := fmt.Errorf("open a session: %w", &errkind.NotLeader{Leader: leader})
		st := status.Convert(ToStatus(nil, err))
		if st.Code() != codes.Unavailable {
			t.Fatalf("code = %v, want Unavailable", st.Code())
		}
		back := FromStatus(st.Err())
		var nl *errkind.NotLeader
		if !errors.As(back, &nl) || nl.Leader != leader {
			t.Fatalf("FromStatus = %#v, want a NotLeader with leader %q", back, leader)
		}
		if !errors.Is(back, errkind.Unavailable) {
			t.Error("a NotLeader is not Unavailable")
		}
	}
	// A plain Unavailable is not taken for a redirect.
	back := FromStatus(status.Error(codes.Unavailable, "connection refused"))
	var nl *errkind.NotLeader
	if errors.As(back, &nl) {
		t.Fatalf("a plain Unavailable became %#v", nl)
	}
}
