package fleet

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/cutover-dev/cutover/pkg/errkind"
)

// Call sends cmd to agent and waits for its final report (DONE or FAILED),
// which goes to the caller instead of Reports(); progress reports of cmd
// are dropped. The command is outstanding while the call lasts (an agent
// that reconnects gets it again) and forgotten when the call ends, answered
// or not: it is never resent after that, and a late answer is dropped.
// Errors: InvalidArgument when a call with the same command id is under
// way; DeadlineExceeded or Aborted (wrapping ctx's error) when ctx ends
// first. A FAILED report is a report, not an error.
func (f *Fleet) Call(ctx context.Context, agent string, cmd Command) (Report, error) {
	if cmd.ID == "" {
		return Report{}, fmt.Errorf("call to agent %s: command id is required: %w", agent, errkind.InvalidArgument)
	}
	ch := make(chan Report, 1)
	f.mu.Lock()
	if _, dup := f.waiters[cmd.ID]; dup {
		f.mu.Unlock()
		return Report{}, fmt.Errorf("call to agent %s: command %s is already under way: %w", agent, cmd.ID, errkind.InvalidArgument)
	}
	f.waiters[cmd.ID] = ch
	f.mu.Unlock()
	defer f.endCall(agent, cmd.ID)

	f.Send(agent, cmd)
	select {
	case r := <-ch:
		return r, nil
	case <-ctx.Done():
		kind := errkind.Aborted
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			kind = errkind.DeadlineExceeded
		}
		return Report{}, fmt.Errorf("agent %s did not answer command %s in time (%w); the command is no longer sent to it: %w",
			agent, cmd.ID, ctx.Err(), kind)
	}
}

// endCall forgets the waiter of command id and the command itself.
func (f *Fleet) endCall(agent, id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.waiters, id)
	f.outstanding[agent] = slices.DeleteFunc(f.outstanding[agent], func(c Command) bool { return c.ID == id })
	if len(f.outstanding[agent]) == 0 {
		delete(f.outstanding, agent)
	}
}

// deliverLocked hands r to the Call that waits for its command, if any,
// and says whether one does (then r is not for Reports()). A final report
// ends the wait. The caller holds f.mu.
func (f *Fleet) deliverLocked(r Report) bool {
	ch, ok := f.waiters[r.CommandID]
	if !ok {
		return false
	}
	if r.Outcome.Final() {
		delete(f.waiters, r.CommandID)
		ch <- r // cap 1, and only one final report is delivered
	}
	return true
}
