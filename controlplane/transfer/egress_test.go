package transfer

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestEgressWait(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name    string
		rate    int64
		burst   int
		ctx     context.Context
		n       int
		wantErr error
	}{
		{name: "no cap", rate: 0, burst: 1, ctx: cancelled, n: 1 << 30},
		{name: "within the burst", rate: 1, burst: 1 << 20, ctx: cancelled, n: 1 << 20},
		// The first piece is the full bucket; the second must wait a
		// second, and the context has ended.
		{name: "beyond the burst, cancelled", rate: 1, burst: 1, ctx: cancelled, n: 2, wantErr: context.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := newEgress(tc.rate, tc.burst).wait(tc.ctx, tc.n)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("wait: %v, want %v", err, tc.wantErr)
			}
		})
	}
}

// TestSendHoldsEgressCap sends 3 MiB under a 6 MiB/s cap whose burst is
// one batch (1 MiB): the sends must span at least (3 − 1) MiB ÷ 6 MiB/s,
// and the time waited is counted.
func TestSendHoldsEgressCap(t *testing.T) {
	const rate = 6 << 20
	s, chunks, reg := setup(t, 48, 64<<10, Config{MaxEgress: rate})
	start := time.Now()
	var sent int
	var last time.Time
	err := s.Send(context.Background(), "prod", ids(chunks), nil, func(b []Chunk) error {
		for _, c := range b {
			sent += len(c.Data)
		}
		last = time.Now()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	elapsed := last.Sub(start)
	if limit := float64(rate)*elapsed.Seconds() + DefaultBatchBytes; float64(sent) > limit {
		t.Errorf("sent %d bytes in %v: more than cap × time + one batch (%.0f)", sent, elapsed, limit)
	}
	var waited float64
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		switch mf.GetName() {
		case "cutover_transfer_egress_throttled_seconds_total":
			waited = mf.GetMetric()[0].GetCounter().GetValue()
		case "cutover_transfer_egress_limit_bytes_per_second":
			if got := mf.GetMetric()[0].GetGauge().GetValue(); got != rate {
				t.Errorf("limit gauge = %v, want %v", got, rate)
			}
		}
	}
	if waited <= 0 {
		t.Errorf("throttled seconds = %v, want > 0", waited)
	}
}
