package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cutover-dev/cutover/pkg/errkind"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// follow watches deployment d until done(state) holds and returns it as it
// then is. It prints every change on out (one JSON event per line for
// deploy watch -o json, one YAML document per event with -o yaml; on a
// terminal, the steps as lines and a progress bar per agent; plain lines
// otherwise). When the controller goes
// away (restart) it re-attaches until ctx ends.
func (c *cli) follow(ctx context.Context, d *cutoverv1.Deployment, done func(cutoverv1.DeploymentState) bool, out io.Writer) (*cutoverv1.Deployment, error) {
	return c.followUntil(ctx, d, func(d *cutoverv1.Deployment) bool { return done(d.GetState()) }, out)
}

// followOutcome is --wait: it follows d until done holds, its progress on
// stderr, prints the summary line (the deployment with -o json or yaml)
// and fails unless d then is in state success.
func (c *cli) followOutcome(ctx context.Context, d *cutoverv1.Deployment, done func(*cutoverv1.Deployment) bool, success cutoverv1.DeploymentState) error {
	fctx, fcancel := c.followCtx(ctx)
	defer fcancel()
	final, err := c.followUntil(fctx, d, done, c.stderr)
	if err != nil {
		return err
	}
	if perr := c.print(final, func(w io.Writer) { fmt.Fprintln(w, summary(final)) }); perr != nil {
		return perr
	}
	if final.GetState() != success {
		return endedError(final)
	}
	return nil
}

// followUntil is follow with a condition on the whole deployment.
func (c *cli) followUntil(ctx context.Context, d *cutoverv1.Deployment, done func(*cutoverv1.Deployment) bool, out io.Writer) (*cutoverv1.Deployment, error) {
	api, err := c.api()
	if err != nil {
		return nil, err
	}
	jsonEvents := c.output != "table" && out == c.stdout // json or yaml
	p := &progress{}
	var live *liveView
	if !jsonEvents && c.isTerminal(out) {
		live, p.skipAgents = &liveView{w: out}, true
	}
	show := func(ev *cutoverv1.DeploymentEvent) error {
		if jsonEvents {
			return c.writeEvent(out, ev)
		}
		now := time.Now()
		if live != nil {
			at := now
			if ev.GetTime() != nil {
				at = ev.GetTime().AsTime()
			}
			return live.show(p.lines(ev, now), ev.GetDeployment(), at)
		}
		for _, l := range p.lines(ev, now) {
			if _, err := fmt.Fprintln(out, l); err != nil {
				return err
			}
		}
		return nil
	}
	// The current state: shown as a line, or, in JSON, only when there is
	// nothing to watch (the stream starts with it otherwise).
	if !jsonEvents || done(d) {
		if err := show(&cutoverv1.DeploymentEvent{Deployment: d, Time: timestamppb.Now()}); err != nil {
			return d, err
		}
	}
	if done(d) {
		return d, nil
	}
	const maxBackoff = 2 * time.Second
	backoff := 100 * time.Millisecond
	for {
		err := c.watchOnce(ctx, api, d.GetId(), func(ev *cutoverv1.DeploymentEvent) (bool, error) {
			backoff = 100 * time.Millisecond
			d = ev.GetDeployment()
			return done(d), show(ev)
		})
		if err == nil {
			return d, nil
		}
		// gRPC's own timer for ctx's deadline may fire before ctx's: its
		// DeadlineExceeded is that same deadline.
		if ctx.Err() != nil || isKind(err, errkind.DeadlineExceeded) {
			cause := ctx.Err()
			if cause == nil {
				cause = context.DeadlineExceeded
			}
			return d, fmt.Errorf("stopped following deployment %s, last seen %s: %w", d.GetId(), stateName(d.GetState()), cause)
		}
		if !retryable(err) {
			return d, err
		}
		select {
		case <-ctx.Done():
			continue
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// errStreamEnded says that the controller closed a watch before a final state.
var errStreamEnded = errors.New("watch ended early")

// watchOnce runs one WatchDeployment stream, calling handle for each event
// until handle reports done (nil) or the stream fails.
func (c *cli) watchOnce(ctx context.Context, api cutoverv1.AdminServiceClient, id string, handle func(*cutoverv1.DeploymentEvent) (bool, error)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := api.WatchDeployment(ctx, &cutoverv1.WatchDeploymentRequest{Id: id, ChangedAgentsOnly: true})
	if err != nil {
		return err
	}
	var whole *cutoverv1.Deployment // as the stream's events so far make it
	for {
		ev, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return errStreamEnded
		}
		if err != nil {
			return err
		}
		ev = mergeEvent(whole, ev)
		whole = ev.GetDeployment()
		finished, err := handle(ev)
		if err != nil || finished {
			return err
		}
	}
}

// mergeEvent returns ev with the whole deployment: when ev holds only the
// agents that changed (agents_partial), whole's agents with those in place
// of the ones of the same name and new ones at the end. Neither whole nor
// ev is modified.
func mergeEvent(whole *cutoverv1.Deployment, ev *cutoverv1.DeploymentEvent) *cutoverv1.DeploymentEvent {
	if !ev.GetAgentsPartial() {
		return ev
	}
	out := proto.CloneOf(ev)
	out.AgentsPartial = false
	d := out.GetDeployment()
	index := map[string]int{}
	var agents []*cutoverv1.DeploymentAgent
	for _, a := range whole.GetAgents() {
		index[a.GetName()] = len(agents)
		agents = append(agents, a)
	}
	for _, a := range d.GetAgents() {
		if i, ok := index[a.GetName()]; ok {
			agents[i] = a
			continue
		}
		index[a.GetName()] = len(agents)
		agents = append(agents, a)
	}
	if d != nil {
		d.Agents = agents
	}
	return out
}

// retryable reports whether a watch error is worth re-attaching after: the
// controller restarted or closed the stream early.
func retryable(err error) bool {
	if errors.Is(err, errStreamEnded) {
		return true
	}
	return isKind(err, errkind.Unavailable) || isKind(err, errkind.Aborted)
}

// progress turns a sequence of deployment events into plain lines, one per
// change of the deployment's state or of an agent's state or byte counts.
type progress struct {
	state   cutoverv1.DeploymentState
	errMsg  string
	history int // history entries seen
	agents  map[string]string
	// skipAgents leaves out the agents' lines (a liveView draws them as bars).
	skipAgents bool
}

// lines returns the lines that ev adds to what was shown before. now stands
// in for an event without a time.
func (p *progress) lines(ev *cutoverv1.DeploymentEvent, now time.Time) []string {
	d := ev.GetDeployment()
	if d == nil {
		return nil
	}
	at := now
	if ev.GetTime() != nil {
		at = ev.GetTime().AsTime()
	}
	prefix := at.Local().Format("15:04:05.000") + "  " + d.GetId() + "  "
	var out []string
	if d.GetState() != p.state || d.GetError() != p.errMsg {
		line := prefix + stateName(d.GetState())
		switch msg := ev.GetMessage(); {
		case d.GetError() != "":
			line += ": " + d.GetError()
		case strings.HasPrefix(msg, stateName(d.GetState())):
			line = prefix + msg
		case msg != "":
			line += ": " + msg
		}
		out = append(out, line)
		p.state, p.errMsg = d.GetState(), d.GetError()
	} else if h := d.GetHistory(); len(h) > p.history && p.history > 0 {
		// An event that kept the state: a schedule, an approval, an extension.
		for _, e := range h[p.history:] {
			out = append(out, prefix+stateName(d.GetState())+": "+e.GetMessage())
		}
	}
	p.history = max(p.history, len(d.GetHistory()))
	if p.agents == nil {
		p.agents = map[string]string{}
	}
	for _, a := range d.GetAgents() {
		if p.skipAgents {
			break
		}
		text := fmt.Sprintf("agent %s %s", a.GetName(), agentStateName(a.GetState()))
		if a.GetReleaseBytes() > 0 || a.GetTransferredBytes() > 0 {
			text += fmt.Sprintf(" %s of %s", formatBytes(a.GetTransferredBytes()), formatBytes(a.GetReleaseBytes()))
		}
		if a.GetError() != "" {
			text += ": " + a.GetError()
		}
		if p.agents[a.GetName()] != text {
			p.agents[a.GetName()] = text
			out = append(out, prefix+text)
		}
	}
	return out
}
