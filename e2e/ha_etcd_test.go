package e2e

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/internal/etcdcluster"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// stopEtcdLeader kills (SIGKILL) the etcd member that leads etcd's raft
// now, and returns its index for StartMember.
func (h *haCluster) stopEtcdLeader() int {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := h.hc.EtcdLeader(ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := h.hc.Etcd.StopMember(m); err != nil {
		h.t.Fatal(err)
	}
	return m
}

// startEtcdMember starts etcd member m again and waits until it is healthy.
func (h *haCluster) startEtcdMember(m int) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), etcdcluster.StartTimeout)
	defer cancel()
	if err := h.hc.Etcd.StartMember(ctx, m); err != nil {
		h.t.Fatalf("start etcd member %d again: %v", m, err)
	}
}

// TestEtcdMemberKilledInDeployment: three controllers on a three-member
// etcd, three agents. The member that leads etcd's raft is killed
// (SIGKILL) while stage 1 runs and started again once the deployment is
// PREPARED; the member that leads then is killed while stage 2 waits in a
// before_activate hook, and started again at the end. Nothing notices
// beyond latency: the deployment ends DEPLOYED with every front-end on the
// release, no controller exited, and the same controller led throughout,
// in the same term.
func TestEtcdMemberKilledInDeployment(t *testing.T) {
	t.Parallel()
	h := newHACluster(t, memberLossTTL)
	src := filepath.Join(h.dir, "src")
	copyApp(t, src, "v1")
	hold := filepath.Join(h.dir, "hold")
	holdHook(t, src, "v1", hold)
	h.createEnv("ha", true)
	h.startAgents("ha", "fe-1", "fe-2", "fe-3")
	app := h.registerApp(src)
	lead, epoch := h.leaderAddr()
	admin := h.client(lead)
	ctx := context.Background()

	d := h.createDeployment("ha", app, "v1")
	start := time.Now()
	if _, err := admin.PrepareDeployment(ctx, &cutoverv1.PrepareDeploymentRequest{Id: d}); err != nil {
		t.Fatal(err)
	}
	m1 := h.stopEtcdLeader()
	t.Logf("etcd member %d (the raft leader) killed during prepare", m1)
	h.waitDeployment(d, prepared)
	prepareTook := time.Since(start)
	h.startEtcdMember(m1)

	if _, err := admin.ContinueDeployment(ctx, &cutoverv1.ContinueDeploymentRequest{Id: d}); err != nil {
		t.Fatal(err)
	}
	h.waitStep(admin, d, "before")
	m2 := h.stopEtcdLeader()
	t.Logf("etcd member %d (the raft leader) killed during stage 2's before_activate step", m2)
	if err := os.WriteFile(hold, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	got := h.waitDeployed(admin, d)
	h.startEtcdMember(m2)

	h.checkCurrent(app, releaseOf(t, got))
	h.checkAnswers("v1")
	if exited := h.hc.Exited(); len(exited) > 0 {
		t.Errorf("controllers exited: %v", exited)
	}
	if now, nowEpoch := h.leaderAddr(); now != lead || nowEpoch != epoch {
		t.Errorf("the leader is %s at epoch %d; want %s at epoch %d, unchanged", now, nowEpoch, lead, epoch)
	}
	t.Logf("prepare with an etcd member down: %s; stage 2 (activate to finish, the hook's wait included): %s",
		prepareTook.Round(time.Millisecond), got.GetFinishTime().AsTime().Sub(got.GetActivateTime().AsTime()).Round(time.Millisecond))
}
