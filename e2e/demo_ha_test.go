package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/cutover-dev/cutover/internal/etcdcluster"
)

// TestDemoHA runs cutover-demo -ha as make demo-ha does, so that it keeps
// working: three controllers on a three-member etcd, three agents; v1
// everywhere, then the leader killed in v2's stage 2, another elected,
// and v2 everywhere, the deployment DEPLOYED through a follower.
func TestDemoHA(t *testing.T) {
	t.Parallel()
	etcd := etcdcluster.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*deployDeadline)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, bin("cutover-demo"), "-bin", binDir, "-ha", "-leader-ttl", "3s", "-app", filepath.Join("..", "examples", "hello"))
	cmd.Env = append(os.Environ(), etcdcluster.BinaryEnv+"="+etcd)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("cutover-demo -ha: %v\n%s", err, out.String())
	}
	text := out.String()
	for _, want := range []struct {
		text  string
		count int
	}{
		{"LEADER (epoch ", 1},
		{"  follower\n", 2},
		{" answers v1\n", 3},
		{"the hook holds it.\n", 1},
		{"Killing the leader, ", 1},
		{" won the election after ", 1},
		{"DEPLOYED: every agent runs the new releases", 2}, // v1, then v2 after the kill
		{" answers v2\n", 3},
		{"it rejoins as a follower", 1},
		{"Done: every process stopped", 1},
	} {
		checkCount(t, text, want.text, want.count)
	}
}
