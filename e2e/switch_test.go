package e2e

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/internal/localcluster"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// Issue 12, "no impact, measured": these tests run a probe (internal/probe)
// against three front-ends while the real binaries switch a real HTTP app
// (examples/listen). With run.listen, the agent holds the sockets and the
// new release starts beside the old one on them, so no request is refused
// or fails: not during a continue, a rollback, a release whose health check
// fails, or an agent replaced by a new build. Without run.listen, the
// refused window is measured and logged.

// checkOverlap fails the test unless every agent of d reports how long
// both versions served (DeploymentAgent.overlap), and logs them with the
// activation spread.
func checkOverlap(t *testing.T, d *cutoverv1.Deployment) {
	t.Helper()
	for _, a := range d.GetAgents() {
		if a.GetOverlap() == nil || a.GetOverlap().AsDuration() <= 0 {
			t.Errorf("deployment %s: agent %s reports no overlap of the two versions: %v", d.GetId(), a.GetName(), a.GetOverlap())
			continue
		}
		t.Logf("deployment %s: %s overlap %s", d.GetId(), a.GetName(), a.GetOverlap().AsDuration().Round(time.Millisecond))
	}
	t.Logf("deployment %s: activation spread %s, stage 2 %s", d.GetId(), d.GetActivationSpread().AsDuration().Round(time.Millisecond),
		d.GetFinishTime().AsTime().Sub(d.GetActivateTime().AsTime()).Round(time.Millisecond))
}

// TestSwitchNoImpact: three front-ends, the Go app with run.listen, a
// probe throughout: v1 → v2 (stage 1 and 2), a rollback with cutoverctl,
// then a v3 whose health check fails. Nothing is refused, nothing fails;
// once DEPLOYED (or ROLLED_BACK) is seen, only the version that should run
// answers.
func TestSwitchNoImpact(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.createEnv("prod", true)
	c.startAgents("prod", "fe-1", "fe-2", "fe-3")
	app := c.newListenApp("web", "v1", appKind{listen: true})
	d1 := c.deployVersion("prod", "web", "v1", deployed)
	v1 := releaseOf(t, d1)
	c.checkAnswers("v1")
	p := c.startProbe("v1")
	noImpact(t, "v1 running", phase(t, p, "v1 running"))

	t.Log("v2: stage 1 and stage 2 under the probe")
	app.setVersion("v2", false)
	d2 := c.deployVersion("prod", "web", "v2", deployed)
	c.afterSwitch(p, "v1 → v2", "v2")
	checkOverlap(t, d2)
	if t.Failed() {
		t.FailNow()
	}

	t.Log("rollback to v1 with cutoverctl, under the probe")
	if code, out, errOut := c.ctl("deploy", "rollback", d2.GetId(), "--reason", "e2e: back to v1", "--wait"); code != 0 {
		t.Fatalf("cutoverctl deploy rollback %s --wait: exit %d\n%s%s", d2.GetId(), code, out, errOut)
	}
	c.waitDeployment(d2.GetId(), rolledBack)
	c.afterSwitch(p, "rollback v2 → v1", "v1")

	t.Log("v3, whose health check fails: its processes stop, v1 never stopped serving")
	app.setVersion("v3", true)
	d3 := c.deployVersion("prod", "web", "v3", rolledBack, failed)
	if d3.GetError() == "" {
		t.Errorf("deployment %s ended %s without an error", d3.GetId(), d3.GetState())
	}
	// v3's process serves on the shared sockets from its start until its
	// health check has failed for health_timeout: not asserted, logged.
	r3 := c.afterSwitch(p, "v1 → v3 (unhealthy)", "v1")
	t.Logf("v3, unhealthy, answered %d of the %d requests sent during its deployment", r3.Answers("v3"), r3.Requests())
	c.checkAnswers("v1")
	c.checkCurrent("web", v1)
}

// TestSwitchAgentReplaced: with the probe on, one front-end's agent is
// stopped, its binary replaced by a new file and started again from it on
// the same data dir: the app goes on serving (same process), and a v2
// rollout and a rollback still work on it, without impact. Its run.health
// is the URL form (http://127.0.0.1:${PORT}/healthz), whose path the agent
// asks the private socket for.
func TestSwitchAgentReplaced(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := newCluster(t)
	c.createEnv("prod", true)
	c.startAgents("prod", "fe-1", "fe-2", "fe-3")
	app := c.newListenApp("web", "v1", appKind{listen: true, healthURL: true})
	d1 := c.deployVersion("prod", "web", "v1", deployed)
	v1 := releaseOf(t, d1)
	p := c.startProbe("v1")
	noImpact(t, "v1 running", phase(t, p, "v1 running"))

	a := c.Agents[0]
	pid, err := appPID(a.Port)
	if err != nil {
		t.Fatalf("%s: the app's pid: %v", a.Name, err)
	}
	t.Logf("%s: agent pid %d stopped; the app (pid %d) must go on serving", a.Name, a.Proc.Pid(), pid)
	a.Proc.Stop()
	noImpact(t, "agent stopping", phase(t, p, "until the agent exited"))
	if t.Failed() {
		t.FailNow() // the app went with its agent: what follows would only time out
	}
	c.waitProbeAnswers(p, "v1") // every front-end answers while fe-1 has no agent
	noImpact(t, "agent down", phase(t, p, "no agent on "+a.Name))

	a.Binary = filepath.Join(c.dir, "agent-next", "cutover-agent")
	if err := os.MkdirAll(filepath.Dir(a.Binary), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := localcluster.CopyFile(bin("cutover-agent"), a.Binary); err != nil {
		t.Fatal(err)
	}
	if err := c.StartAgent(ctx, a, "prod"); err != nil {
		t.Fatalf("start %s from %s: %v", a.Name, a.Binary, err)
	}
	c.waitRunning("prod", a.Name, "web", v1)
	if got, err := appPID(a.Port); err != nil || got != pid {
		t.Errorf("%s: after the agent's replacement the app's pid is %d (%v), want %d unchanged", a.Name, got, err, pid)
	}
	noImpact(t, "agent replaced", phase(t, p, "agent replaced and started"))
	if t.Failed() {
		t.FailNow()
	}

	t.Log("v2 and a rollback through the new agent")
	app.setVersion("v2", false)
	d2 := c.deployVersion("prod", "web", "v2", deployed)
	c.afterSwitch(p, "v1 → v2", "v2")
	checkOverlap(t, d2)
	if got, err := appPID(a.Port); err != nil || got == pid {
		t.Errorf("%s: v2 answers from pid %d (%v), v1's pid: want a new process", a.Name, got, err)
	}
	c.rollback(d2.GetId())
	c.afterSwitch(p, "rollback v2 → v1", "v1")
	c.checkCurrent("web", v1)
}

// TestSwitchWithoutListen: the same app without run.listen switches as
// before issue 12, the old process stopped before the new one listens.
// The refused window of each front-end is measured and logged, not
// asserted; what is asserted is that v2, and only v2, answers once the
// deployment is DEPLOYED.
func TestSwitchWithoutListen(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.createEnv("prod", true)
	c.startAgents("prod", "fe-1", "fe-2", "fe-3")
	app := c.newListenApp("web", "v1", appKind{})
	c.deployVersion("prod", "web", "v1", deployed)
	p := c.startProbe("v1")
	noImpact(t, "v1 running", phase(t, p, "v1 running"))

	app.setVersion("v2", false)
	d2 := c.deployVersion("prod", "web", "v2", deployed)
	r := phase(t, p, "v1 → v2 without run.listen, until DEPLOYED is seen")
	for _, name := range r.Targets {
		n := r.Counts[name]
		t.Logf("%s without run.listen: refused %d, failed %d, refused window %s, longest time without an answer %s",
			name, n.Refused, n.Failed, n.RefusedWindow().Round(time.Millisecond), n.LongestGap.Round(time.Millisecond))
	}
	t.Logf("deployment %s: activation spread %s", d2.GetId(), d2.GetActivationSpread().AsDuration().Round(time.Millisecond))
	c.waitProbeAnswers(p, "v2")
	after := phase(t, p, "v2 DEPLOYED")
	noImpact(t, "v2 DEPLOYED", after)
	onlyVersion(t, "v2 DEPLOYED", after, "v2")
}

// TestSwitchPython: the Python app (standard library, sockets from
// LISTEN_FDS) with run.listen switches v1 → v2 without impact: the hand-over
// is not Go's alone.
func TestSwitchPython(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.createEnv("prod", true)
	c.startAgents("prod", "fe-1", "fe-2", "fe-3")
	app := c.newListenApp("pyweb", "v1", appKind{python: true, listen: true})
	c.deployVersion("prod", "pyweb", "v1", deployed)
	p := c.startProbe("v1")
	noImpact(t, "v1 running", phase(t, p, "v1 running"))
	app.setVersion("v2", false)
	d2 := c.deployVersion("prod", "pyweb", "v2", deployed)
	c.afterSwitch(p, "v1 → v2", "v2")
	checkOverlap(t, d2)
}
