package errkind

import (
	"errors"
	"fmt"
	"testing"
)

func TestMessage(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("cannot connect to db: %w", Unavailable), "cannot connect to db"},
		{fmt.Errorf("took too long: %w", DeadlineExceeded), "took too long"},
		{fmt.Errorf("outer: %w", fmt.Errorf("inner: %w", NotFound)), "outer: inner"},
		{fmt.Errorf("%w: in the middle", InvalidArgument), "invalid argument: in the middle"},
		{New(FailedPrecondition, "as the server said"), "as the server said"},
		{errors.New("no kind: unavailable"), "no kind: unavailable"},
	} {
		if got := Message(tc.err); got != tc.want {
			t.Errorf("Message(%q) = %q, want %q", tc.err, got, tc.want)
		}
	}
}
