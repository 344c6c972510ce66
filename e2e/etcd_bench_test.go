package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/internal/localcluster"
	"github.com/cutover-dev/cutover/pkg/poll"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// stage2Rig is a controller with three agents and examples/hello, on one
// store, and the stage 2 times measured on it.
type stage2Rig struct {
	name  string
	lc    *localcluster.Cluster
	src   string
	times []time.Duration
}

// newStage2Rig starts a controller with args, three agents of a two-stage
// environment, and registers a copy of examples/hello.
func newStage2Rig(b *testing.B, name string, args ...string) *stage2Rig {
	b.Helper()
	ctx := context.Background()
	dir, err := filepath.EvalSymlinks(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	lc, err := localcluster.Start(ctx, localcluster.Config{BinDir: binDir, Dir: dir, ControllerArgs: append([]string{"--source-root", dir}, args...)})
	b.Cleanup(lc.Close)
	if err != nil {
		b.Fatalf("%s: start controller: %v", name, err)
	}
	waitLeading(b, lc.Admin)
	r := &stage2Rig{name: name, lc: lc, src: filepath.Join(dir, "src")}
	if err := localcluster.CopyApp(filepath.Join("..", "examples", "hello"), r.src, "v0"); err != nil {
		b.Fatal(err)
	}
	if _, err := lc.Admin.CreateEnvironment(ctx, &cutoverv1.CreateEnvironmentRequest{Environment: &cutoverv1.Environment{
		Name: "bench", TwoStage: true, Database: &cutoverv1.Database{Driver: "sqlite", Dsn: filepath.Join(dir, "bench.db")}}}); err != nil {
		b.Fatal(err)
	}
	if err := lc.StartAgents(ctx, "bench", "fe-1", "fe-2", "fe-3"); err != nil {
		b.Fatal(err)
	}
	if _, err := lc.Admin.RegisterApplication(ctx, &cutoverv1.RegisterApplicationRequest{Application: &cutoverv1.Application{SourceDir: r.src}}); err != nil {
		b.Fatal(err)
	}
	return r
}

// deploy prepares version, then continues it, and records stage 2's
// time as the controller measured it (activate_time to finish_time).
func (r *stage2Rig) deploy(b *testing.B, version string) {
	b.Helper()
	ctx := context.Background()
	if err := localcluster.WriteVersion(r.src, version); err != nil {
		b.Fatal(err)
	}
	d, err := r.lc.Admin.CreateDeployment(ctx, &cutoverv1.CreateDeploymentRequest{Environment: "bench",
		Applications: []*cutoverv1.ApplicationVersion{{Name: "hello", VersionLabel: version}}})
	if err != nil {
		b.Fatal(err)
	}
	wait := func(want cutoverv1.DeploymentState) *cutoverv1.Deployment {
		var got *cutoverv1.Deployment
		if err := poll.Until(ctx, deployDeadline, func() error {
			if got, err = r.lc.Admin.GetDeployment(ctx, &cutoverv1.GetDeploymentRequest{Id: d.GetId()}); err != nil {
				return err
			}
			if s := got.GetState(); s == want || s.Final() {
				return nil
			}
			return fmt.Errorf("still %s", got.GetState())
		}); err != nil || got.GetState() != want {
			b.Fatalf("%s: deployment %s: %v, %s; want %s", r.name, d.GetId(), err, got.GetState(), want)
		}
		return got
	}
	if _, err := r.lc.Admin.PrepareDeployment(ctx, &cutoverv1.PrepareDeploymentRequest{Id: d.GetId()}); err != nil {
		b.Fatal(err)
	}
	wait(prepared)
	if _, err := r.lc.Admin.ContinueDeployment(ctx, &cutoverv1.ContinueDeploymentRequest{Id: d.GetId()}); err != nil {
		b.Fatal(err)
	}
	done := wait(deployed)
	r.times = append(r.times, done.GetFinishTime().AsTime().Sub(done.GetActivateTime().AsTime()))
}

func median(ds []time.Duration) time.Duration {
	s := slices.Sorted(slices.Values(ds))
	return s[len(s)/2]
}

// BenchmarkStage2EtcdOverBbolt measures stage 2 of examples/hello on three
// agents with a controller on bbolt and one on a three-member etcd, in
// turns in the same run (one deployment on each per iteration), and
// reports the median of each and their ratio, etcd/bbolt. `make
// bench-etcd` runs it without the race detector.
func BenchmarkStage2EtcdOverBbolt(b *testing.B) {
	e := startEtcd(b)
	rigs := []*stage2Rig{
		newStage2Rig(b, "bbolt"),
		newStage2Rig(b, "etcd", "--store", "etcd", "--etcd-endpoints", strings.Join(e.Endpoints, ",")),
	}
	for _, r := range rigs { // a first deployment: the builds' caches, the agents' first release
		r.deploy(b, "v0")
		r.times = nil
	}
	n := 0
	for b.Loop() {
		n++
		for _, r := range rigs {
			r.deploy(b, fmt.Sprintf("v%d", n))
		}
	}
	// Stage 2 waits on agents, processes and health checks that vary from
	// run to run far more than the store does: the minimum is the cost
	// of the path, the median what a run sees.
	bolt, etcd := median(rigs[0].times), median(rigs[1].times)
	boltMin, etcdMin := slices.Min(rigs[0].times), slices.Min(rigs[1].times)
	b.ReportMetric(float64(bolt.Microseconds())/1000, "bbolt-median-ms")
	b.ReportMetric(float64(etcd.Microseconds())/1000, "etcd-median-ms")
	b.ReportMetric(float64(etcd)/float64(bolt), "etcd/bbolt-median")
	b.ReportMetric(float64(etcdMin)/float64(boltMin), "etcd/bbolt-min")
	b.Logf("stage 2, %d deployments each: bbolt median %v min %v %v; etcd median %v min %v %v", n, bolt, boltMin, rigs[0].times, etcd, etcdMin, rigs[1].times)
}
