package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// TestStuckAgentMidCommit (issue 14, "stage 2 always ends"): an agent
// stopped with SIGSTOP right after it received commit (its validate hook
// marks that it runs) does not hold stage 2. Once the environment's
// commit deadline passes, the other agent rolls back and the deployment
// ends ROLLED_BACK (or FAILED) naming the stopped one, within the deadline
// and a margin; the environment is free again (a new deployment
// prepares). After SIGCONT, the stopped agent finishes its commit, is
// rolled back to the fleet's outcome, and every front-end's `current`
// points at the release that ran before.
func TestStuckAgentMidCommit(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	ctx := context.Background()
	src := filepath.Join(c.dir, "src")
	copyApp(t, src, "v1")
	base, err := os.ReadFile(filepath.Join(src, "cutover.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	c.createEnv("stuck", true)
	if code, _, errOut := c.ctl("env", "update", "stuck", "--commit-deadline", "8s"); code != 0 {
		t.Fatalf("env update --commit-deadline: exit %d: %s", code, errOut)
	}
	c.startAgents("stuck", "fe-1", "fe-2")
	c.registerApp(src)

	t.Log("v1 runs everywhere")
	d1 := c.createDeployment("stuck", "hello", "v1")
	c.prepareAndWait(d1)
	v1 := releaseOf(t, c.continueAndWait(d1, deployed))

	t.Log("v2: its validate hook marks, per agent, that commit runs there, then takes 2 s")
	marks := filepath.Join(c.dir, "marks")
	if err := os.MkdirAll(marks, 0o755); err != nil {
		t.Fatal(err)
	}
	writeVersion(t, src, "v2")
	spec := string(base) + fmt.Sprintf("hooks:\n  validate: [{command: 'touch %s/$PORT; sleep 2', timeout: 1m}]\n", marks)
	if err := os.WriteFile(filepath.Join(src, "cutover.yaml"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	d2 := c.createDeployment("stuck", "hello", "v2")
	v2 := releaseOf(t, c.prepareAndWait(d2))
	if code, out, errOut := c.ctl("deploy", "plan", d2); code != 0 || !strings.Contains(out, "stage 2 deadlines: arm 10m0s, hooks 10m0s, commit 8s") {
		t.Errorf("deploy plan: exit %d, stdout:\n%s\nstderr: %s", code, out, errOut)
	}

	if _, err := c.Admin.ContinueDeployment(ctx, &cutoverv1.ContinueDeploymentRequest{Id: d2}); err != nil {
		t.Fatal(err)
	}
	stuck := c.Agents[1]
	c.waitFor(deployDeadline, "fe-2 runs commit (its validate hook)", func() error {
		_, err := os.Stat(filepath.Join(marks, strconv.Itoa(stuck.Port)))
		return err
	})
	pid := stuck.Proc.Pid()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGCONT) }) // so that it can be stopped at the end
	t.Log("fe-2 stopped (SIGSTOP) in the middle of its commit")
	dep, err := c.Admin.GetDeployment(ctx, &cutoverv1.GetDeploymentRequest{Id: d2})
	if err != nil {
		t.Fatal(err)
	}
	if dep.GetStep() != "commit" || dep.GetStepDeadline() == nil {
		t.Fatalf("deployment %s: step %q, step_deadline %v; want commit with a deadline:\n%s", d2, dep.GetStep(), dep.GetStepDeadline(), asJSON(dep))
	}
	deadline := dep.GetStepDeadline().AsTime()
	const margin = 10 * time.Second // the swap-back of fe-1: restart v1, its health check
	if _, out, _ := c.ctl("deploy", "get", d2); !strings.Contains(out, "STEP") || !strings.Contains(out, "commit, ends by") {
		t.Errorf("deploy get does not show the step and its deadline:\n%s", out)
	}

	var ended *cutoverv1.Deployment
	c.waitFor(time.Until(deadline)+margin, "the deployment ends within the commit deadline and a margin", func() error {
		var err error
		if ended, err = c.Admin.GetDeployment(ctx, &cutoverv1.GetDeploymentRequest{Id: d2}); err != nil {
			return err
		}
		if !ended.GetState().Final() {
			return fmt.Errorf("still %s (step %s), %s after its deadline", ended.GetState(), ended.GetStep(), time.Since(deadline).Round(time.Second))
		}
		return nil
	})
	after := ended.GetFinishTime().AsTime().Sub(deadline)
	t.Logf("deployment %s ended %s %s after the commit deadline: %s", d2, ended.GetState(), after.Round(time.Millisecond), ended.GetError())
	if after < 0 {
		t.Errorf("deployment %s ended %s before the commit deadline, while fe-2 was stopped", d2, -after)
	}
	if s := ended.GetState(); s != rolledBack && s != cutoverv1.DeploymentState_DEPLOYMENT_STATE_FAILED {
		t.Fatalf("deployment %s ended %s, want ROLLED_BACK or FAILED:\n%s", d2, s, asJSON(ended))
	}
	mentionsAll(t, "the error", ended.GetError(), "agent fe-2: no answer to commit within the commit deadline (8s)", "unreachable: fe-2")
	if a := deploymentAgent(ended, "fe-2"); a.GetUnanswered() != "commit" {
		t.Errorf("fe-2 in %s: %v, want unanswered commit", d2, a)
	}
	if target, err := os.Readlink(filepath.Join(c.Agents[0].Root, "hello", "current")); err != nil || filepath.Base(target) != v1 {
		t.Errorf("fe-1 runs %s (%v), want v1 (%s) again", target, err, short(v1))
	}

	t.Log("the environment is free: a new deployment prepares (on fe-1, once keepalive shows fe-2 gone)")
	c.waitDisconnected("fe-2")
	d3 := c.createDeployment("stuck", "hello", "v2")
	c.prepareAndWait(d3)
	if _, err := c.Admin.AbortDeployment(ctx, &cutoverv1.AbortDeploymentRequest{Id: d3, Reason: "only to show the environment is free"}); err != nil {
		t.Fatal(err)
	}

	t.Log("fe-2 continues (SIGCONT): it finishes its commit, then is rolled back to the fleet's outcome")
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	c.waitFor(time.Minute, "fe-2 brought to the outcome", func() error {
		dep, err := c.Admin.GetDeployment(ctx, &cutoverv1.GetDeploymentRequest{Id: d2})
		if err != nil {
			return err
		}
		if a := deploymentAgent(dep, "fe-2"); a.GetUnanswered() != "" || a.GetState() != cutoverv1.AgentDeploymentState_AGENT_DEPLOYMENT_STATE_ROLLED_BACK {
			return fmt.Errorf("fe-2 in %s: %v", d2, a)
		}
		return nil
	})
	c.checkCurrent("hello", v1)
	c.waitFor(30*time.Second, "every front-end answers v1", func() error {
		for _, a := range c.Agents {
			if target, err := os.Readlink(filepath.Join(a.Root, "hello", "current")); err != nil || filepath.Base(target) == v2 {
				return fmt.Errorf("agent %s runs %s (%v)", a.Name, target, err)
			}
		}
		return nil
	})
	c.waitAgentsConnected("stuck")
	c.checkAnswers("v1")
}
