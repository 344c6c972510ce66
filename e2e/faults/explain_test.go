package faults

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// A deployment that does not end in time is explained where it is seen
// (explain), so that a failure that does not replay says by itself
// whether stage 2 waits for an agent (its step, its deadline, who has not
// answered), for its SQL step (no deadline of its own), or for a
// controller that no longer moves (the deadline passed long ago: its
// timer task, its report loop or its fleet is blocked). The goroutines of
// every process are saved then (their pprof endpoint, Config.Pprof), in
// the test's artifact directory (go test -artifacts -outputdir DIR keeps
// it), and the controller's goroutines that wait on a lock are quoted.

// explainBound bounds each request explain makes: a frozen controller
// must not hang the report.
const explainBound = 5 * time.Second

// explain describes deployment id as the controller shows it now, with
// its agents, the fleet's view and where the processes' goroutines wait.
func (r *run) explain(ctx context.Context, id string) string {
	var b strings.Builder
	gctx, cancel := context.WithTimeout(ctx, explainBound)
	d, err := r.c.Admin.GetDeployment(gctx, &cutoverv1.GetDeploymentRequest{Id: id})
	cancel()
	if err != nil {
		fmt.Fprintf(&b, "\n  GetDeployment %s: %v", id, err)
	} else {
		b.WriteString(describeDeployment(d, time.Now()))
	}
	lctx, cancel := context.WithTimeout(ctx, explainBound)
	agents, err := r.c.Admin.ListAgents(lctx, &cutoverv1.ListAgentsRequest{Environment: env})
	cancel()
	if err != nil {
		fmt.Fprintf(&b, "\n  ListAgents: %v (the controller's fleet does not answer within %s: blocked?)", err, explainBound)
	} else {
		for _, a := range agents.GetAgents() {
			running := ""
			for _, ap := range a.GetApplications() {
				if ap.GetName() == app {
					running = ap.GetRunningReleaseId()
				}
			}
			fmt.Fprintf(&b, "\n  fleet: %s connected=%t running %q", a.GetName(), a.GetConnected(), shortID(running))
		}
	}
	b.WriteString(r.dumpGoroutines(ctx))
	return b.String()
}

// describeDeployment renders what stage 2 of d waits for: its step and
// that step's deadline (relative to now), each agent's state, error and
// unanswered command, and the last entries of its history.
func describeDeployment(d *cutoverv1.Deployment, now time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n  %s: state %s, step %q", d.GetId(), short(d.GetState()), d.GetStep())
	switch dl := d.GetStepDeadline(); {
	case dl == nil && d.GetState() == cutoverv1.DeploymentState_DEPLOYMENT_STATE_ACTIVATING:
		b.WriteString(", no step deadline (the sql, contract and undo steps end by --sql-timeout)")
	case dl != nil && now.After(dl.AsTime()):
		fmt.Fprintf(&b, ", step deadline passed %s ago (the controller's timer has not moved it on)", now.Sub(dl.AsTime()).Round(100*time.Millisecond))
	case dl != nil:
		fmt.Fprintf(&b, ", step deadline in %s", dl.AsTime().Sub(now).Round(100*time.Millisecond))
	}
	if e := d.GetError(); e != "" {
		fmt.Fprintf(&b, "; error %q", e)
	}
	for _, a := range d.GetAgents() {
		fmt.Fprintf(&b, "\n  agent %s: %s", a.GetName(), strings.TrimPrefix(a.GetState().String(), "AGENT_DEPLOYMENT_STATE_"))
		if a.GetReady() {
			b.WriteString(", ready")
		}
		if a.GetSwapTime() != nil {
			fmt.Fprintf(&b, ", swapped at %s", a.GetSwapTime().AsTime().Format("15:04:05.000"))
		}
		if u := a.GetUnanswered(); u != "" {
			fmt.Fprintf(&b, ", left %s unanswered", u)
		}
		if e := a.GetError(); e != "" {
			fmt.Fprintf(&b, ", error %q", e)
		}
	}
	h := d.GetHistory()
	for _, t := range h[max(0, len(h)-6):] {
		fmt.Fprintf(&b, "\n  history %s %s (%s): %s", t.GetTime().AsTime().Format("15:04:05.000"), short(t.GetState()), t.GetActor(), t.GetMessage())
	}
	return b.String()
}

// dumpGoroutines saves the goroutines of the controller and of each agent
// in the test's artifact directory, and returns where, with the
// controller's goroutines that wait on a lock or a channel in cutover's
// code.
func (r *run) dumpGoroutines(ctx context.Context) string {
	dir := r.t.ArtifactDir()
	targets := []struct{ name, addr string }{{"controller", r.c.ControllerPprofAddr}}
	for _, a := range r.c.Agents {
		targets = append(targets, struct{ name, addr string }{a.Name, a.PprofAddr})
	}
	var b strings.Builder
	for _, tg := range targets {
		if tg.addr == "" {
			continue
		}
		dump, err := goroutines(ctx, tg.addr)
		if err != nil {
			fmt.Fprintf(&b, "\n  goroutines of %s: %v", tg.name, err)
			continue
		}
		path := filepath.Join(dir, fmt.Sprintf("goroutines-%s-%s.txt", tg.name, time.Now().Format("150405.000")))
		if err := os.WriteFile(path, dump, 0o644); err != nil {
			fmt.Fprintf(&b, "\n  goroutines of %s: %v", tg.name, err)
			continue
		}
		fmt.Fprintf(&b, "\n  goroutines of %s: %s", tg.name, path)
		if tg.name == "controller" {
			for _, g := range waitingInCutover(string(dump)) {
				fmt.Fprintf(&b, "\n    %s", strings.ReplaceAll(g, "\n", "\n    "))
			}
		}
	}
	return b.String()
}

// goroutines fetches the full goroutine dump of the process serving pprof
// at addr.
func goroutines(ctx context.Context, addr string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, explainBound)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/debug/pprof/goroutine?debug=2", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", req.URL, resp.Status)
	}
	return io.ReadAll(resp.Body)
}

// waitingInCutover returns the goroutines of dump (debug=2) that wait on a
// mutex, a condition or a channel, or sit in bbolt's lock, while in
// cutover's own code, each as its header and its first cutover frames:
// the ones to read when a controller no longer moves.
func waitingInCutover(dump string) []string {
	var out []string
	for _, g := range strings.Split(dump, "\n\n") {
		header, _, _ := strings.Cut(g, "\n")
		waits := strings.Contains(header, "[sync.Mutex.Lock") || strings.Contains(header, "[sync.RWMutex") ||
			strings.Contains(header, "[semacquire") || strings.Contains(header, "[chan send") || strings.Contains(header, "[sync.Cond.Wait")
		if !waits || !strings.Contains(g, "cutover-dev/cutover/controlplane") {
			continue
		}
		lines := []string{header}
		for _, l := range strings.Split(g, "\n")[1:] {
			if strings.Contains(l, "cutover-dev/cutover/") && !strings.HasPrefix(l, "\t") && len(lines) < 7 {
				lines = append(lines, strings.TrimSpace(l))
			}
		}
		out = append(out, strings.Join(lines, "\n"))
		if len(out) == 12 {
			break
		}
	}
	return out
}

// shortID is the first 12 characters of a release id, for messages.
func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
