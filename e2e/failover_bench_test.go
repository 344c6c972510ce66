package e2e

import (
	"context"
	"flag"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/controlplane/leader"
	"github.com/cutover-dev/cutover/internal/etcdcluster"
	"github.com/cutover-dev/cutover/internal/hacluster"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// failoverTTL is the controllers' --leader-ttl in BenchmarkFailover; 0:
// the controller's default.
var failoverTTL = flag.Duration("failover-ttl", 0, "BenchmarkFailover: the controllers' --leader-ttl (0: the default, "+leader.DefaultTTL.String()+")")

// BenchmarkFailover measures failover over the real binaries: three
// controllers on a three-member etcd, three agents that know all three.
// Each iteration kills the leader (SIGKILL) and measures the time until
// another controller leads, answers an AdminService call and lists every
// agent connected to it; then it starts the killed controller again (a
// follower). It reports the p50 and the max of those times, and the
// lease TTL they are measured against (the goal: max ≤ TTL + 3 s). `make
// bench-failover` runs it 10 times without the race detector.
func BenchmarkFailover(b *testing.B) {
	etcdcluster.Require(b)
	ttl := *failoverTTL
	if ttl == 0 {
		ttl = leader.DefaultTTL
	}
	dir, err := filepath.EvalSymlinks(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	hc, err := hacluster.Start(ctx, hacluster.Config{BinDir: binDir, Dir: dir, LeaderTTL: ttl})
	b.Cleanup(hc.Close)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := hc.Admin.CreateEnvironment(ctx, &cutoverv1.CreateEnvironmentRequest{Environment: &cutoverv1.Environment{Name: "bench"}}); err != nil {
		b.Fatal(err)
	}
	if err := hc.StartAgents(ctx, "bench", "fe-1", "fe-2", "fe-3"); err != nil {
		b.Fatal(err)
	}
	timeout := 3*ttl + 30*time.Second
	var times, elected []time.Duration
	for b.Loop() {
		f, err := hc.KillLeader(ctx, "bench", timeout)
		if err != nil {
			for _, p := range hc.Procs() {
				b.Logf("--- last lines of %s:\n%s", p.Log, p.Tail(30))
			}
			b.Fatal(err)
		}
		times, elected = append(times, f.Took), append(elected, f.Elected)
		if err := hc.Restart(ctx, f.Old); err != nil {
			b.Fatalf("start %s again: %v", f.Old, err)
		}
	}
	p50, worst := median(times), slices.Max(times)
	b.ReportMetric(p50.Seconds(), "p50-s")
	b.ReportMetric(worst.Seconds(), "max-s")
	b.ReportMetric(ttl.Seconds(), "ttl-s")
	// One line each: go test keeps only the first lines of a benchmark's log.
	b.Logf("failover over %d runs, leader TTL %s: p50 %s, max %s (goal ≤ TTL + 3 s = %s); the election alone: p50 %s, max %s",
		len(times), ttl, p50.Round(time.Millisecond), worst.Round(time.Millisecond), ttl+3*time.Second,
		median(elected).Round(time.Millisecond), slices.Max(elected).Round(time.Millisecond))
	b.Logf("kill → serving with every agent connected, run by run: %v", rounded(times))
	b.Logf("kill → elected, run by run: %v", rounded(elected))
}

// rounded returns ds rounded to the millisecond.
func rounded(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(time.Millisecond)
	}
	return out
}
