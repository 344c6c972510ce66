package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cutover-dev/cutover/controlplane/migrate/migratetest"
	"github.com/cutover-dev/cutover/internal/etcdcluster"
	"github.com/cutover-dev/cutover/internal/hacluster"
	"github.com/cutover-dev/cutover/internal/localcluster"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// haCluster is three controllers on one three-member etcd
// (internal/hacluster: the harness's controller, whose CA the others
// share), agents that know all three, and an etcd client to see who leads.
type haCluster struct {
	*cluster
	hc     *hacluster.Cluster
	etcd   *clientv3.Client
	prefix string
	token  string
}

// haTTL is the leader's lease in the failover tests: short, so that a
// killed leader is replaced quickly, and long enough that a loaded CI
// machine does not end a live leader's term. memberLossTTL is the
// default lease, for the test where no controller should lose its term.
const (
	haTTL         = 5 * time.Second
	memberLossTTL = 10 * time.Second
)

func newHACluster(t *testing.T, ttl time.Duration) *haCluster {
	t.Helper()
	etcdcluster.Require(t)
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), etcdcluster.StartTimeout+localcluster.StartTimeout)
	defer cancel()
	hc, err := hacluster.Start(ctx, hacluster.Config{BinDir: binDir, Dir: dir, Prefix: "/e2e-ha/", LeaderTTL: ttl,
		// The test's temporary directories (its app sources among them) share one parent: the source root.
		ControllerArgs: []string{"--log-level", "debug", "--source-root", filepath.Dir(dir)}})
	t.Cleanup(func() {
		hc.Close()
		if t.Failed() {
			for _, p := range hc.Procs() {
				t.Logf("--- last lines of %s:\n%s", p.Log, p.Tail(40))
			}
		}
	})
	if err != nil {
		t.Fatalf("start the controllers on etcd: %v", err)
	}
	h := &haCluster{cluster: &cluster{Cluster: hc.Cluster, t: t, dir: dir}, hc: hc, etcd: hc.EtcdClient, prefix: hc.Prefix}
	if h.token, err = hc.AdminToken(); err != nil {
		t.Fatal(err)
	}
	return h
}

// leaderAddr returns the leading controller's address and epoch; with
// not, a leader other than those.
func (h *haCluster) leaderAddr(not ...string) (string, uint64) {
	h.t.Helper()
	addr, epoch, err := h.hc.WaitLeader(context.Background(), 30*time.Second, not...)
	if err != nil {
		h.t.Fatalf("a leader (not %v): %v", not, err)
	}
	return addr, epoch
}

// client returns an AdminService client of the controller at addr.
func (h *haCluster) client(addr string) cutoverv1.AdminServiceClient {
	h.t.Helper()
	admin, closeConn, err := h.hc.Client(addr)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(closeConn)
	return admin
}

// holdHook makes v's before_activate hook wait until the file hold exists.
func holdHook(t *testing.T, src, version, hold string) {
	t.Helper()
	writeVersion(t, src, version)
	spec, err := os.ReadFile(filepath.Join(src, "cutover.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	spec = append(spec, fmt.Sprintf("hooks:\n  before_activate: [{command: 'while [ ! -e %s ]; do sleep 0.05; done', timeout: 2m}]\n", hold)...)
	if err := os.WriteFile(filepath.Join(src, "cutover.yaml"), spec, 0o644); err != nil {
		t.Fatal(err)
	}
}

// waitStep waits until deployment id, read from any controller, is in
// stage 2's step.
func (h *haCluster) waitStep(admin cutoverv1.AdminServiceClient, id, step string) {
	h.t.Helper()
	h.waitFor(60*time.Second, id+" at step "+step, func() error {
		d, err := admin.GetDeployment(context.Background(), &cutoverv1.GetDeploymentRequest{Id: id})
		if err != nil {
			return err
		}
		if !strings.Contains(strings.ToLower(d.GetStep()), step) {
			return fmt.Errorf("%s is %s, step %s", id, d.GetState(), d.GetStep())
		}
		return nil
	})
}

// waitDeployed waits until deployment id, read through admin, is DEPLOYED.
func (h *haCluster) waitDeployed(admin cutoverv1.AdminServiceClient, id string) *cutoverv1.Deployment {
	h.t.Helper()
	var d *cutoverv1.Deployment
	h.waitFor(90*time.Second, id+" DEPLOYED", func() error {
		var err error
		if d, err = admin.GetDeployment(context.Background(), &cutoverv1.GetDeploymentRequest{Id: id}); err != nil {
			return err
		}
		if d.GetState() != deployed {
			return fmt.Errorf("%s is %s (%s)", id, d.GetState(), d.GetError())
		}
		return nil
	})
	return d
}

// TestLeaderKilledInStage2: three controllers on one etcd, two agents that
// know all three. The leader is killed (SIGKILL) while stage 2 waits in a
// before_activate hook; a follower is elected, resumes stage 2 and ends it
// DEPLOYED with both front-ends on v2, and the migration ran exactly once.
// Operators reach the new leader through any controller (a follower
// forwards); agents follow the leader.
func TestLeaderKilledInStage2(t *testing.T) {
	t.Parallel()
	h := newHACluster(t, haTTL)
	db := sqlDatabase{migratetest.SQLite, filepath.Join(h.dir, "ha.db")}
	src := filepath.Join(h.dir, "src")
	copyApp(t, src, "v1")
	h.createEnvWithDB("ha", true, db.proto())
	h.startAgents("ha", "fe-1", "fe-2")
	app := h.registerApp(src)
	d1 := h.createDeployment("ha", app, "v1")
	h.prepareAndWait(d1)
	h.continueAndWait(d1, deployed)

	hold := filepath.Join(h.dir, "hold")
	holdHook(t, src, "v2", hold)
	addMigration(t, src, "0002_ha.up.sql", "CREATE TABLE ha_runs (n INTEGER);\nINSERT INTO ha_runs (n) VALUES (1);\n")
	d2 := h.createDeployment("ha", app, "v2")
	v2 := releaseOf(t, h.prepareAndWait(d2))
	first, epoch := h.leaderAddr()
	// PREPARED means the followers hold v2's chunks too, copied from the
	// leader (controlplane/mirror, with their controller certificates
	// through the leader's guard) and recorded in etcd (controlplane/copies).
	if lack := h.lacking(first, v2); len(lack) > 0 {
		t.Fatalf("%s is PREPARED, but the followers %v do not hold its release", d2, lack)
	}
	admin := h.client(first)
	if _, err := admin.ContinueDeployment(context.Background(), &cutoverv1.ContinueDeploymentRequest{Id: d2}); err != nil {
		t.Fatal(err)
	}
	h.waitStep(admin, d2, "before")
	killed := time.Now()
	h.hc.Kill(first)
	t.Logf("leader %s (epoch %d) killed in stage 2's before_activate step", first, epoch)

	next, nextEpoch := h.leaderAddr(first)
	if nextEpoch <= epoch {
		t.Errorf("the new leader's epoch %d is not above %d", nextEpoch, epoch)
	}
	follower := ""
	for _, addr := range h.hc.Addrs {
		if addr != first && addr != next {
			follower = addr
		}
	}
	// Through the follower: its calls are forwarded to the new leader.
	viaFollower := h.client(follower)
	h.waitFor(30*time.Second, "both agents connected to the new leader", func() error {
		return h.AgentsConnected(context.Background(), viaFollower, "ha")
	})
	t.Logf("failover: %s from the kill to a new leader (%s, epoch %d) with both agents connected (lease TTL %s)",
		time.Since(killed).Round(time.Millisecond), next, nextEpoch, haTTL)
	if err := os.WriteFile(hold, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	d := h.waitDeployed(viaFollower, d2)
	if got := releaseOf(t, d); got != v2 {
		t.Errorf("deployed %s, prepared %s", got, v2)
	}
	// The real grpcurl against the follower: reflection is served there,
	// the call is forwarded to the leader.
	out := h.grpcurl(tool(t, "grpcurl"), append(h.grpcurlTLS(h.token), "-d", `{"id":"`+d2+`"}`, follower, "cutover.v1.AdminService/GetDeployment")...)
	mentionsAll(t, "grpcurl GetDeployment through a follower", out, `"state": "DEPLOYMENT_STATE_DEPLOYED"`)
	h.checkCurrent(app, v2)
	h.checkAnswers("v2")
	pool := migratetest.Connect(t, db.driver, db.dsn)
	var runs int
	if err := pool.QueryRow("SELECT count(*) FROM ha_runs").Scan(&runs); err != nil || runs != 1 {
		t.Errorf("the migration's row is there %d times (%v); want exactly once", runs, err)
	}
}

// TestPausedLeaderIsFenced: the leader is stopped (SIGSTOP) past its lease
// in stage 2; another is elected and finishes the deployment; the old one,
// continued (SIGCONT), finds its term over and exits. Whether it sends a
// command before it notices depends on timing, so the agents' count of
// refused commands is only reported here; that an agent refuses a command
// of an older epoch is asserted in agent/session (fence_test.go).
func TestPausedLeaderIsFenced(t *testing.T) {
	t.Parallel()
	h := newHACluster(t, haTTL)
	src := filepath.Join(h.dir, "src")
	copyApp(t, src, "v1")
	h.createEnv("ha", true)
	h.startAgents("ha", "fe-1", "fe-2")
	app := h.registerApp(src)
	hold := filepath.Join(h.dir, "hold")
	holdHook(t, src, "v1", hold)
	d1 := h.createDeployment("ha", app, "v1")
	h.prepareAndWait(d1)
	first, epoch := h.leaderAddr()
	admin := h.client(first)
	if _, err := admin.ContinueDeployment(context.Background(), &cutoverv1.ContinueDeploymentRequest{Id: d1}); err != nil {
		t.Fatal(err)
	}
	h.waitStep(admin, d1, "before")
	old := h.hc.Proc(first)
	if err := syscall.Kill(old.Pid(), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	next, _ := h.leaderAddr(first) // while the old one is stopped
	if err := os.WriteFile(hold, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	d := h.waitDeployed(h.client(next), d1)
	if err := syscall.Kill(old.Pid(), syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	h.waitFor(30*time.Second, "the old leader steps down", func() error {
		if ended, _ := old.Exited(); !ended {
			return fmt.Errorf("the old leader (epoch %d) still runs", epoch)
		}
		return nil
	})
	if !strings.Contains(old.Tail(50), "leadership ended") {
		t.Errorf("the old leader did not say why it stopped:\n%s", old.Tail(20))
	}
	h.checkCurrent(app, releaseOf(t, d))
	h.checkAnswers("v1")
	fenced := 0.0
	for _, a := range h.Agents {
		page, err := fetchMetrics(a.MetricsAddr)
		if err != nil {
			t.Fatal(err)
		}
		v, _ := page.find("cutover_agent_fenced_commands_total")
		fenced += v
	}
	t.Logf("the old leader's commands refused by the agents after it woke: %.0f (reported, not asserted: see the test's comment)", fenced)
}
