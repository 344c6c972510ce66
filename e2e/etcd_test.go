package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cutover-dev/cutover/internal/etcdcluster"
	"github.com/cutover-dev/cutover/pkg/poll"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// startEtcd starts a three-member etcd for one test, stopped when it ends.
func startEtcd(t testing.TB) *etcdcluster.Cluster {
	t.Helper()
	bin := etcdcluster.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), etcdcluster.StartTimeout)
	defer cancel()
	e, err := etcdcluster.Start(ctx, etcdcluster.Config{Members: 3, Dir: t.TempDir(), Binary: bin})
	t.Cleanup(e.Close)
	if err != nil {
		t.Fatalf("start etcd: %v", err)
	}
	return e
}

// waitLeading waits until a controller on etcd leads: until it is elected
// it answers Unavailable (no leader yet).
func waitLeading(t testing.TB, admin cutoverv1.AdminServiceClient) {
	t.Helper()
	if err := poll.Until(context.Background(), deployDeadline, func() error {
		_, err := admin.ListEnvironments(context.Background(), &cutoverv1.ListEnvironmentsRequest{})
		if status.Code(err) != codes.Unavailable {
			return poll.Permanent(err)
		}
		return err
	}); err != nil {
		t.Fatalf("the controller on etcd does not lead: %v", err)
	}
}

// TestTwoStageOnEtcd: one controller keeps its records in a three-member
// etcd (--store etcd); two agents go through a two-stage deployment; the
// records are in etcd under the prefix, and a controller killed and
// started again finds them there.
func TestTwoStageOnEtcd(t *testing.T) {
	t.Parallel()
	e := startEtcd(t)
	const prefix = "/e2e-cutover/"
	c := newCluster(t, "--store", "etcd", "--etcd-endpoints", strings.Join(e.Endpoints, ","), "--etcd-prefix", prefix)
	waitLeading(t, c.Admin)
	ctx := context.Background()
	src := filepath.Join(c.dir, "src")
	copyApp(t, src, "v1")
	c.createEnv("demo", true)
	c.startAgents("demo", "fe-1", "fe-2")
	c.registerApp(src)

	d := c.createDeployment("demo", "hello", "v1")
	v1 := releaseOf(t, c.prepareAndWait(d))
	c.continueAndWait(d, deployed)
	c.checkCurrent("hello", v1)
	c.checkAnswers("v1")

	cli, err := clientv3.New(clientv3.Config{Endpoints: e.Endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	for _, key := range []string{"environments/demo", "applications/hello", "releases/" + v1, fmt.Sprintf("deployments/%020d", 1), "agents/fe-1", "audit/" + fmt.Sprintf("%020d", 1)} {
		res, err := cli.Get(ctx, prefix+key, clientv3.WithCountOnly())
		if err != nil {
			t.Fatal(err)
		}
		if res.Count != 1 {
			t.Errorf("etcd has no key %s%s", prefix, key)
		}
	}

	// Started again, it leads once the killed one's election lease ends:
	// until then it answers Unavailable.
	c.restartController()
	c.waitFor(deployDeadline, "GetDeployment after a restart", func() error {
		got, err := c.Admin.GetDeployment(ctx, &cutoverv1.GetDeploymentRequest{Id: d})
		if err != nil {
			return err
		}
		if got.GetState() != deployed {
			return poll.Permanent(fmt.Errorf("deployment %s is %s after a restart, want DEPLOYED", d, got.GetState()))
		}
		return nil
	})
}
