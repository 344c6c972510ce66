package leader

import (
	"context"
	"time"
)

// Await says where the leader is (addr, as leader answers) and whether
// this controller is it, for an agent that could not reach the
// controller unreachable ("" if none). When the leader this controller
// knows is unreachable, that leader is presumably dead and its lease not
// expired yet: Await waits until the leader changes (changed returns a
// channel closed at the next change), for at most holdFor, so that the
// agent goes straight to the next leader (or is served here, if this
// controller is elected) instead of back to the dead one and round the
// list with a growing backoff. With changed nil (one controller) it
// answers at once.
func Await(ctx context.Context, leader func() (string, bool), changed func() <-chan struct{}, unreachable string, holdFor time.Duration) (addr string, self bool) {
	if changed == nil || unreachable == "" {
		return leader()
	}
	t := time.NewTimer(holdFor)
	defer t.Stop()
	for {
		next := changed() // before the read: a change after it closes this channel
		if addr, self = leader(); self || addr != unreachable {
			return addr, self
		}
		select {
		case <-ctx.Done():
			return addr, self
		case <-t.C:
			return addr, self
		case <-next:
		}
	}
}
