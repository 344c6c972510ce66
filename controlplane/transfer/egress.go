package transfer

import (
	"context"
	"time"

	"golang.org/x/time/rate"
)

// egress caps the chunk data a Sender sends, over all its transfers
// together (agents staging and follower controllers mirroring alike: both
// leave through the controller's uplink): a token bucket refilled at the
// cap, whose burst is one batch. A batch waits for its bytes before it is
// sent, so over any window the Sender sends at most cap × window + one
// batch. Waiting transfers are served in the order they asked, a piece of
// at most one burst at a time, so that a large batch cannot starve the
// others. A nil egress does not limit.
type egress struct {
	lim   *rate.Limiter
	burst int
}

// newEgress returns a cap of bytesPerSecond with bursts of burst bytes,
// or nil (no cap) when bytesPerSecond <= 0.
func newEgress(bytesPerSecond int64, burst int) *egress {
	if bytesPerSecond <= 0 {
		return nil
	}
	burst = max(burst, 1)
	return &egress{lim: rate.NewLimiter(rate.Limit(bytesPerSecond), burst), burst: burst}
}

// wait takes n bytes from the bucket and returns how long it waited for
// them, or ctx's error if ctx ended first (the tokens of the piece it was
// waiting for are given back).
func (e *egress) wait(ctx context.Context, n int) (time.Duration, error) {
	if e == nil {
		return 0, nil
	}
	var waited time.Duration
	for n > 0 {
		k := min(n, e.burst)
		r := e.lim.ReserveN(time.Now(), k) // k <= burst: always possible
		if d := r.Delay(); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				r.Cancel()
				return waited, ctx.Err()
			case <-t.C:
			}
			waited += d
		}
		n -= k
	}
	return waited, nil
}
