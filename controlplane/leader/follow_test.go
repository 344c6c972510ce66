package leader

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/pkg/poll"
)

// TestFollowerFollowsTheElection: a Follower says who leads, with the
// term's epoch, as leaders come and go; with no leader it says none.
func TestFollowerFollowsTheElection(t *testing.T) {
	cli := client(t)
	prefix := "/" + t.Name() + "/"
	ctx, cancel := context.WithCancel(context.Background())
	f := NewFollower(cli, prefix)
	done := make(chan struct{})
	go func() { defer close(done); f.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	follows := func(name string, epoch uint64) {
		t.Helper()
		if err := poll.Until(ctx, 10*time.Second, func() error {
			f.mu.Lock()
			known := f.known
			f.mu.Unlock()
			got, e, err := f.Leader(ctx)
			switch {
			case err != nil:
				return err
			case !known:
				return fmt.Errorf("the follower has not read the election yet")
			case got != name || e != epoch:
				return fmt.Errorf("leader %q at epoch %d, want %q at %d", got, e, name, epoch)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	follows("", 0)
	changed := f.Changed()
	a := campaign(t, cli, prefix, "a:7070")
	ta := nextTerm(t, a, 10*time.Second)
	follows("a:7070", ta.Epoch)
	select {
	case <-changed:
	default:
		t.Fatal("Changed's channel was not closed when a was elected")
	}
	b := campaign(t, cli, prefix, "b:7070")
	close(ta.end) // a resigns; b is elected
	tb := nextTerm(t, b, 10*time.Second)
	follows("b:7070", tb.Epoch)
	a.stop()
	b.stop()
	close(tb.end)
	follows("", 0)
}
