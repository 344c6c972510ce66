package process

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"time"

	"github.com/cutover-dev/cutover/pkg/errkind"
)

// Handover is one Overlap: a new process started beside the app's running
// one on the same listening sockets, until Finish or Abort.
type Handover struct {
	sup     *Supervisor
	app     string
	old     *proc // nil: the Overlap was a Start
	new     *proc
	started time.Time
	health  string
	promote chan struct{} // closed by Finish: the new process becomes supervised

	mu       sync.Mutex
	finished bool
	sentAt   time.Time
}

// Overlap starts spec's process beside the app's running one, on the same
// listening sockets, and returns at once; the old process keeps serving.
// If the app runs nothing, it is a Start. Errors: FailedPrecondition when
// spec has no Listen, when the app is stopping, when a handover of the app
// is already under way, when the running process was started without the
// same Listen (Restart instead), or when the sockets of an adopted app
// were not recovered ("sockets not recovered": Restart instead).
func (s *Supervisor) Overlap(spec Spec) (*Handover, error) {
	spec = spec.withDefaults()
	app := spec.Application
	if len(spec.Listen) == 0 {
		return nil, fmt.Errorf("overlap %q: the app has no run.listen, so two processes cannot share its sockets; restart it instead: %w", app, errkind.FailedPrecondition)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.procs[app]
	switch {
	case s.detached:
		return nil, fmt.Errorf("overlap %q: the supervisor was detached: %w", app, errkind.FailedPrecondition)
	case old == nil && len(s.stoppingLocked(app)) > 0:
		return nil, fmt.Errorf("overlap %q: the app is stopping: %w", app, errkind.FailedPrecondition)
	case s.overlaps[app] != nil:
		return nil, fmt.Errorf("overlap %q: a handover of the app is already under way; finish or abort it first: %w", app, errkind.FailedPrecondition)
	}
	if old == nil {
		p, r, err := s.startLocked(spec)
		if err != nil {
			return nil, err
		}
		return &Handover{sup: s, app: app, new: p, started: r.start, health: r.health, finished: true, sentAt: r.start}, nil
	}
	ss := s.sockets[app]
	switch {
	case ss != nil && ss.lost != nil:
		return nil, fmt.Errorf("overlap %q: sockets not recovered from the adopted process (%v); restart it instead: %w", app, ss.lost, errkind.FailedPrecondition)
	case !ss.same(spec.Listen):
		return nil, fmt.Errorf("overlap %q: run.listen differs from the sockets of the running process; restart it instead: %w", app, errkind.FailedPrecondition)
	}
	p := s.newProc(spec)
	r, err := p.spawn(ss, roleNext)
	if err != nil {
		return nil, err
	}
	h := &Handover{sup: s, app: app, old: old, new: p, started: r.start, health: r.health, promote: make(chan struct{})}
	s.overlaps[app] = h
	go p.overlapLoop(r, h.promote)
	return h, nil
}

// overlapLoop holds the new process of an Overlap: not restarted if it
// exits, until Finish makes it the supervised one (loop), or Abort or Stop
// stops it (SIGTERM, SIGKILL after its grace), or Detach leaves it.
func (p *proc) overlapLoop(r *running, promote <-chan struct{}) {
	select {
	case <-promote:
		p.loop(r)
	case <-p.stop:
		p.kill(r, syscall.SIGTERM)
		p.sup.removeRecord(roleNext, p.spec.Application, r.pid)
		close(p.done)
	case <-p.detach:
		close(p.done)
	}
}

// HealthSocket is the path of the private unix socket on which only the
// new process serves (HTTP health checks dial it).
func (h *Handover) HealthSocket() string { return h.health }

// Started is when the new process was started.
func (h *Handover) Started() time.Time { return h.started }

// Finish sends the old process its stop signal (its spec's StopSignal to
// its group; SIGKILL after the old spec's StopGrace) and makes the new one
// the app's supervised process (restarts on crash etc.). It returns, once
// the signal is sent, the time it was sent; the old one's exit is awaited
// in the background (a later Stop, Start or StopAll waits for it). Without
// an old process, it returns the start time. After Abort, or a Stop of
// the app, it does nothing and returns the zero time. A second Finish
// returns what the first did.
func (h *Handover) Finish() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.finished {
		return h.sentAt
	}
	s := h.sup
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.overlaps[h.app] != h || s.procs[h.app] != h.old {
		return time.Time{}
	}
	delete(s.overlaps, h.app)
	old := h.old
	s.procs[h.app] = h.new
	s.stopping[h.app] = append(s.stopping[h.app], old)
	old.mu.Lock()
	if old.pid != 0 {
		_ = syscall.Kill(-old.pgid, old.spec.StopSignal)
		old.signalled = old.pid
	}
	old.mu.Unlock()
	h.sentAt = time.Now()
	h.finished = true
	close(old.stop) // its loop waits for it, SIGKILL after its grace
	h.new.mu.Lock()
	if h.new.pid != 0 {
		s.promoteRecord(h.app, h.new.pid)
	}
	h.new.mu.Unlock()
	close(h.promote)
	old.log.Info("handover finished: old process signalled", "signal", old.spec.StopSignal.String())
	return h.sentAt
}

// Abort stops the new process (its group, SIGTERM then SIGKILL after the
// new spec's grace) and leaves the old one serving as it was; it waits
// until the new one is gone or ctx ends. For an Overlap that was a Start,
// it stops the app (Stop). After Finish, it does nothing.
func (h *Handover) Abort(ctx context.Context) error {
	h.mu.Lock()
	if h.old == nil {
		h.mu.Unlock()
		h.sup.mu.Lock()
		running := h.sup.procs[h.app] == h.new
		h.sup.mu.Unlock()
		if !running {
			return nil
		}
		return h.sup.Stop(ctx, h.app)
	}
	if h.finished {
		h.mu.Unlock()
		return nil
	}
	s := h.sup
	s.mu.Lock()
	if s.overlaps[h.app] == h {
		s.dropOverlapLocked(h)
	}
	s.mu.Unlock()
	h.mu.Unlock()
	select {
	case <-h.new.done:
		s.mu.Lock()
		s.stoppingLocked(h.app)
		s.mu.Unlock()
		return nil
	case <-ctx.Done():
		return fmt.Errorf("abort the handover of %q: %w", h.app, ctx.Err())
	}
}

// dropOverlapLocked asks h's new process to stop. Call with s.mu held.
func (s *Supervisor) dropOverlapLocked(h *Handover) {
	delete(s.overlaps, h.app)
	s.stopping[h.app] = append(s.stopping[h.app], h.new)
	close(h.new.stop)
}
