package poll

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestUntil(t *testing.T) {
	errNotYet := errors.New("not yet")
	errFatal := errors.New("fatal")
	tests := []struct {
		name      string
		results   []error
		timeout   time.Duration
		wantErr   error
		wantCalls int
	}{
		{"at once", []error{nil}, time.Second, nil, 1},
		{"third time", []error{errNotYet, errNotYet, nil}, 5 * time.Second, nil, 3},
		{"permanent stops", []error{errNotYet, Permanent(errFatal), nil}, 5 * time.Second, errFatal, 2},
		{"times out", nil, 3 * Every, errNotYet, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			err := Until(context.Background(), tt.timeout, func() error {
				calls++
				if calls <= len(tt.results) {
					return tt.results[calls-1]
				}
				return errNotYet
			})
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Errorf("Until = %v, want %v", err, tt.wantErr)
			}
			if tt.wantCalls >= 0 && calls != tt.wantCalls {
				t.Errorf("cond called %d times, want %d", calls, tt.wantCalls)
			}
		})
	}
}

func TestTrue(t *testing.T) {
	n := 0
	if err := True(context.Background(), 5*time.Second, "n reaches 3", func() bool { n++; return n == 3 }); err != nil || n != 3 {
		t.Errorf("True = %v after %d calls, want nil after 3", err, n)
	}
	err := True(context.Background(), 2*Every, "never", func() bool { return false })
	if err == nil || err.Error() != "not within 40ms: never" {
		t.Errorf("True = %v, want %q", err, "not within 40ms: never")
	}
}
