package e2e

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/internal/localcluster"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// TestKeepaliveSeesStoppedPeers: gRPC keepalive on both sides. An agent
// stopped with SIGSTOP (it answers nothing, its TCP connection stays open)
// is shown disconnected by the controller within 15 s (keepalive: ping
// after 5 s idle, 5 s to answer), the other agent stays connected, and
// after SIGCONT it connects again. A controller stopped with SIGSTOP is
// left by the agents within 25 s (ping after 10 s idle, 5 s to answer),
// and after SIGCONT they connect again.
func TestKeepaliveSeesStoppedPeers(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.createEnv("ka", true)
	c.startAgents("ka", "fe-1", "fe-2")
	stopped := c.Agents[0]

	connected := func() (map[string]bool, error) {
		resp, err := c.Admin.ListAgents(context.Background(), &cutoverv1.ListAgentsRequest{Environment: "ka"})
		if err != nil {
			return nil, err
		}
		out := map[string]bool{}
		for _, a := range resp.GetAgents() {
			out[a.GetName()] = a.GetConnected()
		}
		return out, nil
	}

	t.Log("fe-1 is stopped (SIGSTOP)")
	pid := stopped.Proc.Pid()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGCONT) }) // so that it can be stopped at the end
	start := time.Now()
	c.waitFor(15*time.Second, "the controller shows the stopped agent disconnected", func() error {
		got, err := connected()
		if err != nil {
			return err
		}
		if got["fe-1"] {
			return fmt.Errorf("fe-1 still shown connected after %s", time.Since(start).Round(time.Second))
		}
		return nil
	})
	t.Logf("the stopped agent was shown disconnected after %s", time.Since(start).Round(100*time.Millisecond))
	if got, err := connected(); err != nil || !got["fe-2"] {
		t.Errorf("fe-2, which runs, is shown %v (%v); want connected", got, err)
	}

	t.Log("fe-1 continues (SIGCONT) and connects again")
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	c.waitFor(30*time.Second, "the agent connects again", func() error {
		got, err := connected()
		if err != nil {
			return err
		}
		if !got["fe-1"] || !got["fe-2"] {
			return fmt.Errorf("connected: %v", got)
		}
		return nil
	})

	t.Log("the controller is stopped (SIGSTOP): the agents leave it, and connect again after SIGCONT")
	cpid := c.Controller.Pid()
	if err := syscall.Kill(cpid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(cpid, syscall.SIGCONT) })
	start = time.Now()
	c.waitFor(25*time.Second, "every agent sees the stopped controller and leaves it", func() error {
		for _, a := range c.Agents {
			if v, err := agentConnectedMetric(a); err != nil || v != 0 {
				return fmt.Errorf("agent %s: cutover_agent_controller_connected %v (%v) after %s", a.Name, v, err, time.Since(start).Round(time.Second))
			}
		}
		return nil
	})
	t.Logf("the agents left the stopped controller after %s", time.Since(start).Round(100*time.Millisecond))
	if err := syscall.Kill(cpid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	// The controller may still list the sessions from before it stopped
	// for a moment: what counts is the agents' own view.
	c.waitFor(30*time.Second, "every agent connected again after SIGCONT", func() error {
		for _, a := range c.Agents {
			if v, err := agentConnectedMetric(a); err != nil || v != 1 {
				return fmt.Errorf("agent %s: cutover_agent_controller_connected %v (%v) after SIGCONT, want 1", a.Name, v, err)
			}
		}
		return nil
	})
	c.waitAgentsConnected("ka")
}

// agentConnectedMetric reads cutover_agent_controller_connected from a's /metrics.
func agentConnectedMetric(a *localcluster.Agent) (float64, error) {
	p, err := fetchMetrics(a.MetricsAddr)
	if err != nil {
		return -1, err
	}
	v, ok := p.find("cutover_agent_controller_connected")
	if !ok {
		return -1, fmt.Errorf("no cutover_agent_controller_connected in %s's metrics", a.Name)
	}
	return v, nil
}
