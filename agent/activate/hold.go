package activate

import (
	"context"
	"fmt"
	"time"

	"github.com/cutover-dev/cutover/pkg/errkind"
)

// CommitOptions are what a commit is told besides its releases.
type CommitOptions struct {
	// Hold makes a commit whose apps overlap (run.listen) wait, once every
	// new process is healthy and the old ones still serve beside them, for
	// Finish before the old ones are told to stop; it calls Ready when it
	// starts to wait, and again every ReadyEvery while it waits (a report
	// lost with a connection is sent again).
	Hold bool
	// Ready is called when a held commit waits; nil: not told.
	Ready func()
}

// Defaults of the held commit.
const (
	// ReadyEvery is how often a held commit repeats its Ready call.
	ReadyEvery = time.Second
	// DefaultHoldTimeout bounds the wait for Finish: a controller that
	// never answers does not leave two versions serving for ever; the
	// commit then goes back, as on an abort.
	DefaultHoldTimeout = 5 * time.Minute
)

// Finish tells the held commit of activation id to go on (stop the old
// processes) or, with abort, to go back (stop the new ones, the old ones
// serving as before). It reports whether a commit of id was there to be
// told. An abort sent before the commit waits is kept for it.
func (a *Activator) Finish(id ActivationID, abort bool) bool {
	a.heldMu.Lock()
	defer a.heldMu.Unlock()
	ch, ok := a.held[id]
	if !ok {
		return false
	}
	select {
	case ch <- !abort:
	default: // told already
	}
	return true
}

// holdSlot makes the channel on which Finish reaches the commit of
// activation id; the returned func removes it.
func (a *Activator) holdSlot(id ActivationID) (<-chan bool, func()) {
	ch := make(chan bool, 1)
	a.heldMu.Lock()
	if a.held == nil {
		a.held = map[ActivationID]chan bool{}
	}
	a.held[id] = ch
	a.heldMu.Unlock()
	return ch, func() {
		a.heldMu.Lock()
		if a.held[id] == ch {
			delete(a.held, id)
		}
		a.heldMu.Unlock()
	}
}

// waitFinish calls ready, then waits for Finish on ch (true: go on), and
// calls ready again every ReadyEvery meanwhile. It fails (Aborted) on an
// abort, when ctx ends, or after the hold timeout.
func (a *Activator) waitFinish(ctx context.Context, ch <-chan bool, ready func()) error {
	if ready == nil {
		ready = func() {}
	}
	timeout := time.NewTimer(a.cfg.HoldTimeout)
	defer timeout.Stop()
	tick := time.NewTicker(ReadyEvery)
	defer tick.Stop()
	ready()
	for {
		select {
		case ok := <-ch:
			if !ok {
				return fmt.Errorf("the controller aborted the switch (another front-end failed its commit); the old processes never stopped serving: %w", errkind.Aborted)
			}
			return nil
		case <-ctx.Done():
			return fmt.Errorf("interrupted while waiting for the fleet to switch: %w", ctx.Err())
		case <-timeout.C:
			return fmt.Errorf("no word from the controller within %v while holding the switch; going back: %w", a.cfg.HoldTimeout, errkind.Aborted)
		case <-tick.C:
			ready()
		}
	}
}
