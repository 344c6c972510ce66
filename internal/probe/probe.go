// Package probe sends HTTP requests to front-ends without pause while a
// deployment runs, and counts what each answered: refused connections,
// failed requests (other errors, non-2xx), answers per version (the body of
// GET /, as examples/listen and examples/hello answer it), when each
// version answered first and last, and the longest time without a
// successful answer. It is how the e2e tests and the switch benchmark see
// the impact of a switch from the outside, as users would.
//
// Each front-end gets clients of two kinds, each client sending a request,
// waiting for its answer, pausing a few milliseconds, and again: "fresh"
// clients open a new connection per request (they see a closed port as a
// refused connection), "keep-alive" clients reuse one (they see a process
// that goes away under an open connection). Keep-alive clients are Go's
// http.Transport, which, as browsers do, sends an idempotent request again
// on a new connection when a reused one was closed before any byte of the
// answer came (the race of HTTP/1.1 keep-alive with a server's graceful
// stop closing its idle connections): a failure here is one that such a
// retry did not hide.
//
// Counts are kept per phase: Cut ends the current phase, returns its
// report and starts the next one without stopping the clients, so that a
// test can ask "what happened during the continue" and "what happened once
// it was DEPLOYED" of one continuous probe. A request belongs to the phase
// in which it was sent.
package probe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Defaults used when a Config field is zero.
const (
	defaultFresh     = 2
	defaultKeepAlive = 2
	defaultEvery     = 5 * time.Millisecond
	defaultTimeout   = 5 * time.Second
)

// maxErrorSamples bounds the error messages kept per front-end and phase.
const maxErrorSamples = 5

// Target is one front-end.
type Target struct {
	// Name names it in reports (the agent's name).
	Name string
	// URL is what the clients GET (http://127.0.0.1:PORT/).
	URL string
}

// Config says what to probe and how hard.
type Config struct {
	// Targets are the front-ends.
	Targets []Target
	// Fresh is the number of clients per front-end that open a new
	// connection for every request; KeepAlive the number that reuse one.
	Fresh, KeepAlive int
	// Every is the pause between two requests of one client; each client
	// pauses between Every and 2×Every (spread so that clients do not
	// march in step).
	Every time.Duration
	// Timeout bounds one request.
	Timeout time.Duration
}

// Probe is a running probe. Stop it.
type Probe struct {
	cfg    Config
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu  sync.Mutex
	cur *phase
}

// phase holds the counts of the requests sent between two cuts.
type phase struct {
	start, end time.Time
	counts     map[string]*Counts
	inflight   int
	closed     bool
	drained    chan struct{}
}

// Start starts the clients of every target and returns at once.
func Start(cfg Config) *Probe {
	if cfg.Fresh == 0 && cfg.KeepAlive == 0 {
		cfg.Fresh, cfg.KeepAlive = defaultFresh, defaultKeepAlive
	}
	if cfg.Every <= 0 {
		cfg.Every = defaultEvery
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = defaultTimeout
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Probe{cfg: cfg, cancel: cancel}
	p.cur = p.newPhase(time.Now())
	n := 0
	for _, t := range cfg.Targets {
		for i := range cfg.Fresh + cfg.KeepAlive {
			tr := &http.Transport{DisableKeepAlives: i < cfg.Fresh, MaxIdleConnsPerHost: 1}
			c := &http.Client{Transport: tr, Timeout: cfg.Timeout}
			// Spread the clients over one pause.
			offset := time.Duration(n) * cfg.Every / time.Duration(len(cfg.Targets)*(cfg.Fresh+cfg.KeepAlive))
			n++
			p.wg.Go(func() {
				defer tr.CloseIdleConnections()
				p.client(ctx, t, c, offset)
			})
		}
	}
	return p
}

func (p *Probe) newPhase(start time.Time) *phase {
	ph := &phase{start: start, counts: map[string]*Counts{}, drained: make(chan struct{})}
	for _, t := range p.cfg.Targets {
		ph.counts[t.Name] = &Counts{Versions: map[string]*Seen{}}
	}
	return ph
}

// client sends requests to t until ctx ends.
func (p *Probe) client(ctx context.Context, t Target, c *http.Client, offset time.Duration) {
	pause := time.NewTimer(offset)
	defer pause.Stop()
	for k := 0; ; k++ {
		select {
		case <-ctx.Done():
			return
		case <-pause.C:
		}
		ph := p.enter()
		sent := time.Now()
		version, err := get(ctx, c, t.URL)
		p.leave(ph, t.Name, sent, time.Now(), version, err, ctx.Err() != nil)
		// Between Every and 2×Every, the same sequence for every client.
		pause.Reset(p.cfg.Every + time.Duration(k*7919%10)*p.cfg.Every/10)
	}
}

// get asks url and returns the trimmed body of a 2xx answer.
func get(ctx context.Context, c *http.Client, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", fmt.Errorf("read the answer: %w", err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return "", fmt.Errorf("status %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	return strings.TrimSpace(string(b)), nil
}

// enter returns the current phase, counting one more request in flight.
func (p *Probe) enter() *phase {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cur.inflight++
	return p.cur
}

// leave records one request's outcome in ph, unless the probe was stopping
// (a request cut off by Stop is nobody's failure).
func (p *Probe) leave(ph *phase, target string, sent, done time.Time, version string, err error, stopping bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !stopping {
		ph.counts[target].record(sent, done, version, err)
	}
	ph.inflight--
	if ph.closed && ph.inflight == 0 {
		close(ph.drained)
	}
}

// Cut ends the current phase and starts the next, without a pause in the
// requests; it waits for the requests of the ended phase still in flight
// and returns its report.
func (p *Probe) Cut() Report {
	now := time.Now()
	p.mu.Lock()
	old := p.cur
	old.closed, old.end = true, now
	wait := old.inflight > 0
	p.cur = p.newPhase(now)
	p.mu.Unlock()
	if wait {
		<-old.drained
	}
	return p.report(old)
}

// Snapshot returns the report of the current phase so far.
func (p *Probe) Snapshot() Report {
	p.mu.Lock()
	ph := *p.cur
	ph.end = time.Now()
	p.mu.Unlock()
	return p.report(&ph)
}

// Stop stops the clients and returns the report of the last phase.
func (p *Probe) Stop() Report {
	now := time.Now()
	p.cancel()
	p.wg.Wait()
	p.mu.Lock()
	p.cur.end = now
	ph := p.cur
	p.mu.Unlock()
	return p.report(ph)
}

// report copies ph's counts (under p.mu) into a Report.
func (p *Probe) report(ph *phase) Report {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := Report{Start: ph.start, End: ph.end, Counts: map[string]Counts{}}
	for _, t := range p.cfg.Targets {
		r.Targets = append(r.Targets, t.Name)
		r.Counts[t.Name] = ph.counts[t.Name].clone(ph.start, ph.end)
	}
	return r
}

// Counts is what one front-end answered in one phase.
type Counts struct {
	// Requests is OK + Refused + Failed.
	Requests int
	// OK counts 2xx answers.
	OK int
	// Refused counts connections refused (ECONNREFUSED): nothing listened.
	Refused int
	// Failed counts the other failures: resets, timeouts, non-2xx answers.
	Failed int
	// Errors holds a few of the failures' messages (refused ones aside).
	Errors []string
	// Versions counts the answers per body (version).
	Versions map[string]*Seen
	// FirstRefused and LastRefused bound the refused connections (zero if none).
	FirstRefused, LastRefused time.Time
	// LongestGap is the longest time without a 2xx answer: between two of
	// them, or from the phase's start to the first, or from the last to
	// its end.
	LongestGap time.Duration

	lastOK time.Time
}

// Seen says when one version answered.
type Seen struct {
	// Answers counts them.
	Answers int
	// First and Last are when the first and the last answer arrived.
	First, Last time.Time
	// LastSent is when the latest request that this version answered was sent.
	LastSent time.Time
}

func (c *Counts) record(sent, done time.Time, version string, err error) {
	c.Requests++
	switch {
	case err == nil:
		c.OK++
		s := c.Versions[version]
		if s == nil {
			s = &Seen{First: done}
			c.Versions[version] = s
		}
		s.Answers++
		s.Last = later(s.Last, done)
		s.LastSent = later(s.LastSent, sent)
		if !c.lastOK.IsZero() {
			c.LongestGap = max(c.LongestGap, done.Sub(c.lastOK))
		}
		c.lastOK = later(c.lastOK, done)
		return
	case errors.Is(err, syscall.ECONNREFUSED):
		c.Refused++
		if c.FirstRefused.IsZero() || sent.Before(c.FirstRefused) {
			c.FirstRefused = sent
		}
		c.LastRefused = later(c.LastRefused, sent)
	default:
		c.Failed++
		if len(c.Errors) < maxErrorSamples {
			c.Errors = append(c.Errors, err.Error())
		}
	}
}

// clone copies c, closing its gaps at the phase's bounds.
func (c *Counts) clone(start, end time.Time) Counts {
	out := *c
	out.Errors = append([]string(nil), c.Errors...)
	out.Versions = map[string]*Seen{}
	var first time.Time
	for v, s := range c.Versions {
		cp := *s
		out.Versions[v] = &cp
		if first.IsZero() || s.First.Before(first) {
			first = s.First
		}
	}
	if first.IsZero() {
		out.LongestGap = end.Sub(start)
	} else {
		out.LongestGap = max(out.LongestGap, first.Sub(start), end.Sub(c.lastOK))
	}
	return out
}

// RefusedWindow is the time from the first refused connection to the
// last (0 without any): how long the port was closed, as fresh clients saw it.
func (c Counts) RefusedWindow() time.Duration {
	return c.LastRefused.Sub(c.FirstRefused)
}

// later returns the later of a and b.
func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
