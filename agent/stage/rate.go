package stage

import (
	"context"
	"time"
)

// limiter caps how fast a stage writes: a token bucket on the bytes
// written, refilled at rate bytes per second up to a burst of a tenth of a
// second's worth. A write may take more tokens than the bucket holds: it
// goes through, and the writer sleeps until the debt is paid, so that over
// any stretch longer than the burst the bytes written never exceed rate
// times the time taken. A nil limiter does not limit. It is not safe for
// concurrent use: one stage writes on one goroutine.
type limiter struct {
	rate   float64 // bytes per second
	burst  float64
	tokens float64
	last   time.Time
	now    func() time.Time
	sleep  func(context.Context, time.Duration) error
	// waited is the total time slept.
	waited time.Duration
}

// newLimiter returns a limiter of rate bytes per second, or nil when
// rate <= 0 (no cap).
func newLimiter(rate int64, now func() time.Time, sleep func(context.Context, time.Duration) error) *limiter {
	if rate <= 0 {
		return nil
	}
	burst := max(float64(rate)/10, 1)
	return &limiter{rate: float64(rate), burst: burst, tokens: burst, now: now, sleep: sleep}
}

// wait takes n bytes from the bucket, sleeping as long as the bucket is in
// debt. It returns ctx's error if ctx ends first.
func (l *limiter) wait(ctx context.Context, n int64) error {
	if l == nil || n <= 0 {
		return nil
	}
	t := l.now()
	if !l.last.IsZero() {
		l.tokens = min(l.burst, l.tokens+t.Sub(l.last).Seconds()*l.rate)
	}
	l.last = t
	l.tokens -= float64(n)
	if l.tokens >= 0 {
		return nil
	}
	d := time.Duration(-l.tokens / l.rate * float64(time.Second))
	l.waited += d
	return l.sleep(ctx, d)
}

// effectiveRate is the smaller of two caps in bytes per second, 0 meaning
// no cap.
func effectiveRate(a, b int64) int64 {
	switch {
	case a <= 0:
		return max(b, 0)
	case b <= 0:
		return a
	}
	return min(a, b)
}

// sleepCtx waits d, or until ctx ends (returning its error).
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
