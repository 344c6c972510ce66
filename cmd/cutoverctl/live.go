package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/mattn/go-isatty"

	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// isTerminal reports whether w is a terminal that understands cursor
// movement: a character device (not a pipe or a file), with TERM not "dumb".
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || os.Getenv("TERM") == "dumb" {
		return false
	}
	return isatty.IsTerminal(f.Fd())
}

// stdinIsTerminal reports whether the process's stdin is a terminal.
func stdinIsTerminal() bool {
	return isatty.IsTerminal(os.Stdin.Fd()) || isatty.IsCygwinTerminal(os.Stdin.Fd())
}

// Layout of a progress bar line.
const (
	barWidth  = 24
	rateSpan  = 3 * time.Second // the rate is measured over the last rateSpan
	nameWidth = 12
)

// liveView draws a followed deployment on a terminal: its steps scroll as
// plain lines, and under them one progress bar per agent (state, bytes
// received of the release, rate) is redrawn in place at each event. It only
// writes lines ending in "\n", moving the cursor up over its own bars
// ("\x1b[<n>A") and clearing them ("\r\x1b[2K", "\x1b[J"), so what scrolled
// away stays as it was.
type liveView struct {
	w      io.Writer
	drawn  int // bar lines on screen under the cursor's line, to redraw
	rates  map[string]*rate
	agents []string // agents in the order they appeared
}

// rate measures an agent's transfer rate from its byte counts over time.
type rate struct {
	samples []sample
}

type sample struct {
	at    time.Time
	bytes int64
}

// add records bytes at time at and returns the rate over the last rateSpan
// in bytes per second (0 until two samples span some time).
func (r *rate) add(at time.Time, bytes int64) float64 {
	if n := len(r.samples); n > 0 && bytes < r.samples[n-1].bytes {
		r.samples = nil // a new transfer (stage 2 after stage 1, a restart)
	}
	r.samples = append(r.samples, sample{at, bytes})
	for len(r.samples) > 2 && at.Sub(r.samples[1].at) >= rateSpan {
		r.samples = r.samples[1:]
	}
	first, last := r.samples[0], r.samples[len(r.samples)-1]
	if span := last.at.Sub(first.at); span > 0 {
		return float64(last.bytes-first.bytes) / span.Seconds()
	}
	return 0
}

// show prints steps above the bars and redraws the bars of d's agents as
// they are at time at.
func (v *liveView) show(steps []string, d *cutoverv1.Deployment, at time.Time) error {
	if v.rates == nil {
		v.rates = map[string]*rate{}
	}
	var b strings.Builder
	if v.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", v.drawn)
	}
	for _, s := range steps {
		b.WriteString("\r\x1b[2K" + s + "\n")
	}
	agents := map[string]*cutoverv1.DeploymentAgent{}
	for _, a := range d.GetAgents() {
		if _, ok := v.rates[a.GetName()]; !ok {
			v.rates[a.GetName()] = &rate{}
			v.agents = append(v.agents, a.GetName())
		}
		agents[a.GetName()] = a
	}
	v.drawn = 0
	for _, name := range v.agents {
		a, ok := agents[name]
		if !ok {
			continue // no longer part of the deployment (stage 2 without it)
		}
		bps := v.rates[name].add(at, a.GetTransferredBytes())
		b.WriteString("\r\x1b[2K" + barLine(a, bps) + "\n")
		v.drawn++
	}
	b.WriteString("\x1b[J") // lines left over from a longer drawing
	_, err := io.WriteString(v.w, b.String())
	return err
}

// barLine renders one agent: name, state, bar, percentage, bytes, rate
// (while it stages) and its error, if any.
func barLine(a *cutoverv1.DeploymentAgent, bps float64) string {
	name := a.GetName()
	if len(name) > nameWidth {
		name = name[:nameWidth-1] + "…"
	}
	state := agentStateName(a.GetState())
	total, got := a.GetReleaseBytes(), a.GetTransferredBytes()
	line := fmt.Sprintf("  %-*s %-11s ", nameWidth, name, state)
	if total <= 0 {
		line += "[" + strings.Repeat(" ", barWidth) + "]"
	} else {
		frac := min(float64(got)/float64(total), 1)
		if a.GetState() == cutoverv1.AgentDeploymentState_AGENT_DEPLOYMENT_STATE_STAGED ||
			a.GetState() == cutoverv1.AgentDeploymentState_AGENT_DEPLOYMENT_STATE_ACTIVATING ||
			a.GetState() == cutoverv1.AgentDeploymentState_AGENT_DEPLOYMENT_STATE_ACTIVE {
			frac = 1 // staged: what it lacked came over the wire, the rest it had
		}
		filled := int(frac * barWidth)
		line += fmt.Sprintf("[%s%s] %3d%%  %s of %s", strings.Repeat("#", filled), strings.Repeat("-", barWidth-filled),
			int(frac*100), formatBytes(got), formatBytes(total))
		if a.GetState() == cutoverv1.AgentDeploymentState_AGENT_DEPLOYMENT_STATE_STAGING && bps > 0 {
			line += fmt.Sprintf("  %s/s", formatBytes(int64(bps)))
		}
	}
	if a.GetError() != "" {
		line += "  " + a.GetError()
	}
	return strings.TrimRight(line, " ")
}
