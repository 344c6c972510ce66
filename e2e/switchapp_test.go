package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/internal/localcluster"
	"github.com/cutover-dev/cutover/internal/probe"
	"github.com/cutover-dev/cutover/pkg/poll"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// listenApp is the source of an application made of examples/listen (the
// Go app, prebuilt by TestMain, or the Python one), with or without
// run.listen.
type listenApp struct {
	t   *testing.T
	src string
}

// appKind says which examples/listen app to deploy, and how.
type appKind struct {
	// python: app.py instead of the Go binary.
	python bool
	// listen: with run.listen (the agent hands the sockets over); without,
	// the app listens on its own PORT.
	listen bool
	// healthURL: run.health as http://127.0.0.1:${PORT}/healthz rather
	// than /healthz (localcluster.ListenApp.HealthURL).
	healthURL bool
}

// newListenApp writes the source of app name in the cluster's dir/src-NAME
// at version, registers it and returns it.
func (c *cluster) newListenApp(name, version string, kind appKind) *listenApp {
	c.t.Helper()
	src := filepath.Join(c.dir, "src-"+name)
	app := localcluster.ListenApp{Name: name, Binary: bin("listen"), Listen: kind.listen, HealthURL: kind.healthURL}
	if kind.python {
		app.Binary, app.Python = "", filepath.Join("..", "examples", "listen", "app.py")
	}
	if err := app.Write(src, version); err != nil {
		c.t.Fatal(err)
	}
	if got := c.registerApp(src); got != name {
		c.t.Fatalf("registered the app as %q, want %q", got, name)
	}
	return &listenApp{t: c.t, src: src}
}

// setVersion sets the next release's VERSION and whether its health check
// fails (a file UNHEALTHY in the release).
func (a *listenApp) setVersion(version string, unhealthy bool) {
	a.t.Helper()
	writeVersion(a.t, a.src, version)
	if err := localcluster.SetUnhealthy(a.src, unhealthy); err != nil {
		a.t.Fatal(err)
	}
}

// deployVersion deploys version of app to env in two stages, prepare then
// continue, and waits until it ends in want (or in one of alsoOK).
func (c *cluster) deployVersion(env, app, version string, want cutoverv1.DeploymentState, alsoOK ...cutoverv1.DeploymentState) *cutoverv1.Deployment {
	c.t.Helper()
	ctx := context.Background()
	id := c.createDeployment(env, app, version)
	if _, err := c.Admin.PrepareDeployment(ctx, &cutoverv1.PrepareDeploymentRequest{Id: id}); err != nil {
		c.t.Fatalf("PrepareDeployment(%s): %v", id, err)
	}
	c.waitDeployment(id, prepared)
	if _, err := c.Admin.ContinueDeployment(ctx, &cutoverv1.ContinueDeploymentRequest{Id: id}); err != nil {
		c.t.Fatalf("ContinueDeployment(%s): %v", id, err)
	}
	d := c.waitSettled(id, want)
	if d.GetState() != want && !slices.Contains(alsoOK, d.GetState()) {
		c.t.Fatalf("deployment %s of %s ended %s, want %s:\n%s", id, version, d.GetState(), want, asJSON(d))
	}
	return d
}

// startProbe starts a probe of every agent's PORT and waits until each has
// answered want.
func (c *cluster) startProbe(want string) *probe.Probe {
	c.t.Helper()
	var targets []probe.Target
	for _, a := range c.Agents {
		targets = append(targets, a.ProbeTarget())
	}
	p := probe.Start(probe.Config{Targets: targets, Fresh: 2, KeepAlive: 2, Every: 4 * time.Millisecond})
	c.t.Cleanup(func() { p.Stop() })
	c.waitProbeAnswers(p, want)
	return p
}

// waitProbeAnswers waits until every front-end has answered version at
// least 20 times in the probe's current phase.
func (c *cluster) waitProbeAnswers(p *probe.Probe, version string) {
	c.t.Helper()
	c.waitFor(30*time.Second, "every front-end answers "+version+" to the probe", func() error {
		r := p.Snapshot()
		for _, name := range r.Targets {
			if s := r.Counts[name].Versions[version]; s == nil || s.Answers < 20 {
				return fmt.Errorf("%s has not answered %s 20 times:\n%s", name, version, r.Table())
			}
		}
		return nil
	})
}

// waitOnlyVersion waits until every front-end has answered version at
// least 20 times in the probe's current phase and nothing else: an old
// process told to stop (the switch) finishes the request it has read on
// a keep-alive connection before it closes it, and on a loaded machine
// it may take it a while to act on its signal; a phase in which it still
// answered is cut, and the wait starts again. An old process that never
// stops answering fails the test.
func (c *cluster) waitOnlyVersion(p *probe.Probe, version string) {
	c.t.Helper()
	c.waitFor(30*time.Second, "every front-end answers "+version+" only", func() error {
		r := p.Snapshot()
		for _, name := range r.Targets {
			for v, s := range r.Counts[name].Versions {
				if v != version {
					noImpact(c.t, version+" settling", p.Cut()) // what was cut had no impact either
					return fmt.Errorf("%s still answered %s %d times", name, v, s.Answers)
				}
			}
			if s := r.Counts[name].Versions[version]; s == nil || s.Answers < 20 {
				return fmt.Errorf("%s has not answered %s 20 times:\n%s", name, version, r.Table())
			}
		}
		return nil
	})
}

// phase ends the probe's current phase, logs its report as what, and
// returns it.
func phase(t *testing.T, p *probe.Probe, what string) probe.Report {
	t.Helper()
	r := p.Cut()
	t.Logf("%s: %s", what, r.Table())
	return r
}

// noImpact fails the test unless, in r, every front-end answered every
// request: nothing refused, nothing failed.
func noImpact(t *testing.T, what string, r probe.Report) {
	t.Helper()
	for _, name := range r.Targets {
		c := r.Counts[name]
		if c.Requests == 0 {
			t.Errorf("%s: the probe sent no request to %s", what, name)
		}
		if c.Refused != 0 || c.Failed != 0 {
			t.Errorf("%s: %s refused %d connections (window %s) and failed %d requests of %d; want none: %v",
				what, name, c.Refused, c.RefusedWindow(), c.Failed, c.Requests, c.Errors)
		}
	}
}

// onlyVersion fails the test unless every answer in r came from version.
func onlyVersion(t *testing.T, what string, r probe.Report, version string) {
	t.Helper()
	for _, name := range r.Targets {
		for v, s := range r.Counts[name].Versions {
			if v != version {
				t.Errorf("%s: %s answered %s %d times (the last to a request sent %s after the phase began), want only %s",
					what, name, v, s.Answers, s.LastSent.Sub(r.Start).Round(time.Millisecond), version)
			}
		}
	}
}

// afterSwitch ends the probe's phase of a switch that this test has just
// seen end (what: "v1 → v2"), and fails the test unless it had no impact;
// then it waits until every front-end answers version, and fails the test
// unless, since the end was seen, only version answered, without impact.
// It returns the report of the switch.
func (c *cluster) afterSwitch(p *probe.Probe, what, version string) probe.Report {
	c.t.Helper()
	during := phase(c.t, p, what+", until its end is seen")
	noImpact(c.t, what, during)
	c.waitOnlyVersion(p, version)
	after := version + " after " + what
	r := phase(c.t, p, after)
	noImpact(c.t, after, r)
	onlyVersion(c.t, after, r, version)
	return during
}

// rollback rolls deployment id back with the RollbackDeployment RPC and
// waits until it is ROLLED_BACK (it stays DEPLOYED while the agents go
// back, and with an error if they could not).
func (c *cluster) rollback(id string) {
	c.t.Helper()
	ctx := context.Background()
	if _, err := c.Admin.RollbackDeployment(ctx, &cutoverv1.RollbackDeploymentRequest{Id: id, Reason: "e2e"}); err != nil {
		c.t.Fatalf("RollbackDeployment(%s): %v", id, err)
	}
	var d *cutoverv1.Deployment
	c.waitFor(deployDeadline, "rollback of "+id, func() error {
		var err error
		if d, err = c.Admin.GetDeployment(ctx, &cutoverv1.GetDeploymentRequest{Id: id}); err != nil {
			return err
		}
		if d.GetState() == deployed && d.GetError() == "" {
			return errors.New("still DEPLOYED")
		}
		return nil
	})
	if d.GetState() != rolledBack {
		c.t.Fatalf("rollback of %s ended %s, want ROLLED_BACK:\n%s", id, d.GetState(), asJSON(d))
	}
}

// appPID asks the app on port for its process id (/pid).
func appPID(port int) (int, error) {
	client := &http.Client{Timeout: 2 * time.Second}
	resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/pid", port))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// waitRunning waits until ListAgents shows app running release on agent name.
func (c *cluster) waitRunning(env, name, app, release string) {
	c.t.Helper()
	c.waitFor(30*time.Second, fmt.Sprintf("agent %s runs %s %s", name, app, release), func() error {
		resp, err := c.Admin.ListAgents(context.Background(), &cutoverv1.ListAgentsRequest{Environment: env})
		if err != nil {
			return err
		}
		for _, a := range resp.GetAgents() {
			if a.GetName() != name {
				continue
			}
			if !a.GetConnected() {
				return fmt.Errorf("agent %s is not connected", name)
			}
			for _, ap := range a.GetApplications() {
				if ap.GetName() == app && ap.GetRunningReleaseId() == release {
					return nil
				}
			}
			return fmt.Errorf("agent %s: %v", name, a.GetApplications())
		}
		return poll.Permanent(fmt.Errorf("agent %s is not listed", name))
	})
}
