package stage

import (
	"context"
	"testing"
	"time"
)

// fakeClock is a clock that sleeping advances.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func (c *fakeClock) sleep(_ context.Context, d time.Duration) error {
	c.t = c.t.Add(d)
	return nil
}

func TestEffectiveRate(t *testing.T) {
	for _, tc := range []struct{ cmd, flag, want int64 }{
		{0, 0, 0},
		{100, 0, 100},
		{0, 100, 100},
		{50, 100, 50},
		{100, 50, 50},
		{-1, 100, 100},
		{0, -5, 0},
	} {
		if got := effectiveRate(tc.cmd, tc.flag); got != tc.want {
			t.Errorf("effectiveRate(%d, %d) = %d, want %d", tc.cmd, tc.flag, got, tc.want)
		}
	}
}

func TestLimiter(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		name   string
		rate   int64
		writes []int64
		// between is how long the writer works between two writes.
		between time.Duration
		// want is the least and most time slept in all.
		least, most time.Duration
	}{
		{name: "no cap", rate: 0, writes: []int64{mib, mib}, least: 0, most: 0},
		{name: "within the burst", rate: 10 * mib, writes: []int64{mib / 2, mib / 2}, least: 0, most: 0},
		{name: "10 MiB at 10 MiB/s", rate: 10 * mib, writes: repeat(mib, 10), least: 900 * time.Millisecond, most: time.Second},
		{name: "one write beyond the bucket", rate: mib, writes: []int64{4 * mib}, least: 3900 * time.Millisecond, most: 4 * time.Second},
		{name: "a slow writer never waits", rate: 10 * mib, writes: repeat(mib/2, 10), between: 100 * time.Millisecond, least: 0, most: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &fakeClock{t: time.Unix(1000, 0)}
			l := newLimiter(tc.rate, c.now, c.sleep)
			start := c.t
			for _, n := range tc.writes {
				if err := l.wait(context.Background(), n); err != nil {
					t.Fatal(err)
				}
				c.t = c.t.Add(tc.between)
			}
			slept := c.t.Sub(start) - time.Duration(len(tc.writes))*tc.between
			if slept < tc.least || slept > tc.most {
				t.Errorf("slept %v, want between %v and %v", slept, tc.least, tc.most)
			}
			if l != nil && l.waited != slept {
				t.Errorf("waited = %v, slept %v", l.waited, slept)
			}
		})
	}
}

func TestLimiterStopsWithItsContext(t *testing.T) {
	l := newLimiter(1, time.Now, sleepCtx)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l.wait(ctx, 1<<20); err != context.Canceled {
		t.Errorf("wait on an ended context = %v, want context.Canceled", err)
	}
}

func repeat(n int64, times int) []int64 {
	out := make([]int64, times)
	for i := range out {
		out[i] = n
	}
	return out
}
