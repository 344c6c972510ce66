package deployment

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/cutover-dev/cutover/controlplane/fleet"
	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/pkg/errkind"
)

// This file holds what happens to PREPARED deployments with time: the
// continue scheduled at a window, expiry and its extension, and the timer
// task that does them when they fall due.

// Bounds of the timer task's sleep: at most maxTimerWait, so that a change
// of the wall clock is noticed; at least minTimerWait; and retryTimerWait
// when something due could not be handled (a store error), so that it is
// retried without spinning.
const (
	maxTimerWait   = time.Minute
	minTimerWait   = 50 * time.Millisecond
	retryTimerWait = 5 * time.Second
)

// poke wakes the timer task, to look again at what falls due when.
func (s *Service) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// runTimers calls Tick whenever something falls due, until ctx ends.
func (s *Service) runTimers(ctx context.Context) {
	for {
		wait := maxTimerWait
		if next := s.Tick(); !next.IsZero() {
			wait = min(max(next.Sub(s.clock()), minTimerWait), maxTimerWait)
			if !next.After(s.clock()) { // still due: it failed
				wait = retryTimerWait
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-s.wake:
			t.Stop()
		}
	}
}

// Tick does the time-based work due at the clock's time: PREPARED
// deployments whose expire time has come become EXPIRED (their agents drop
// what they staged), those scheduled at or before it start stage 2, or
// are rescheduled, and ACTIVATING ones whose step deadline passed move on
// without the agents that did not answer (deadline.go). It returns the
// earliest time something else falls due (zero: nothing). Run calls it
// from a timer (and first at startup, so a deployment that expired while
// the controller was down is EXPIRED when it comes back); tests with a
// fake clock call it after moving the clock.
func (s *Service) Tick() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock()
	timed, err := s.timed()
	if err != nil {
		s.log.Error("timers: read deployments", "err", err)
		return now
	}
	for _, d := range timed {
		switch {
		case d.State == model.Activating:
			if dl := StepDeadline(d); !dl.IsZero() && !now.Before(dl) {
				err = s.overdue(d.ID, now)
			}
		case expired(d, now):
			err = s.expire(d.ID, now)
		case !d.ScheduledTime.IsZero() && !now.Before(d.ScheduledTime):
			err = s.fire(d.ID, now)
		}
		if err != nil {
			s.log.Error("timers", "deployment", d.ID, "environment", d.Environment, "err", err)
		}
	}
	if timed, err = s.timed(); err != nil {
		return now
	}
	var next time.Time
	for _, d := range timed {
		due := []time.Time{d.ExpireTime, d.ScheduledTime}
		if d.State == model.Activating {
			due = []time.Time{StepDeadline(d)}
		}
		for _, t := range due {
			if !t.IsZero() && (next.IsZero() || t.Before(next)) {
				next = t
			}
		}
	}
	return next
}

// prepared returns the PREPARED deployments, without their agents.
func (s *Service) prepared() ([]*model.Deployment, error) {
	ds, err := s.timed()
	return slices.DeleteFunc(ds, func(d *model.Deployment) bool { return d.State != model.Prepared }), err
}

// timed returns the deployments with something that falls due: the
// PREPARED (expiry, a schedule) and the ACTIVATING (a step deadline),
// without their agents.
func (s *Service) timed() ([]*model.Deployment, error) {
	var out []*model.Deployment
	err := s.store.View(func(tx model.Tx) error {
		ds, err := tx.DeploymentHeaders("")
		for _, d := range ds {
			if d.State == model.Prepared || d.State == model.Activating {
				out = append(out, d)
			}
		}
		return err
	})
	return out, err
}

// expire ends a PREPARED deployment whose time is up. Call with s.mu held.
func (s *Service) expire(id string, now time.Time) error {
	d, err := s.update(id, func(tx model.Tx, d *model.Deployment) error {
		if d.State != model.Prepared || !expired(d, now) {
			return errUnchanged
		}
		transition(d, model.Expired, now, ControllerActor,
			fmt.Sprintf("expired at %s: not continued within its prepared_ttl (%s); the agents drop the releases staged for it (never a running one)",
				utc(d.ExpireTime), FormatTTL(d.PreparedTTL)))
		return nil
	})
	if d != nil {
		s.log.Info("deployment expired", "deployment", d.ID, "environment", d.Environment, "expire_time", d.ExpireTime)
		s.finished(d)
	}
	return err
}

// fire starts stage 2 of a deployment whose scheduled time has come, or
// reschedules it (or cancels the schedule) saying why. Call with s.mu held.
func (s *Service) fire(id string, now time.Time) error {
	var out []fleet.Outgoing
	d, err := s.update(id, func(tx model.Tx, d *model.Deployment) error {
		if d.State != model.Prepared || d.ScheduledTime.IsZero() || now.Before(d.ScheduledTime) {
			return errUnchanged
		}
		env, err := tx.Environment(d.Environment)
		if err != nil {
			return err
		}
		st := decideScheduled(d, env, now, "")
		if st.start {
			n := len(d.History)
			note(d, now, ControllerActor, fmt.Sprintf("scheduled stage 2 starts (predicted duration %s fits in the open window)", d.PredictedStage2))
			if out, err = s.startStage2(tx, d, ControllerActor); err == nil {
				return nil
			}
			d.History = d.History[:n]
			st = decideScheduled(d, env, now, kindless(err))
		}
		d.ScheduledTime = st.reschedule
		noteOnce(d, now, ControllerActor, st.reason)
		return nil
	})
	if err != nil || d == nil {
		return err
	}
	s.log.Info("scheduled deployment", "deployment", d.ID, "environment", d.Environment, "state", d.State, "scheduled_time", d.ScheduledTime)
	s.send(out)
	if needsSQL(d) {
		s.spawnSQL(d.ID, false)
	}
	s.watchers.publish(d)
	return nil
}

// schedule records that stage 2 of a PREPARED deployment starts at the next
// window opening (now, if one is open).
func (s *Service) schedule(actor, id string, requirePrepared bool) (*model.Deployment, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := s.update(id, func(tx model.Tx, d *model.Deployment) error {
		now := s.clock()
		env, err := tx.Environment(d.Environment)
		if err != nil {
			return err
		}
		if err := checkContinue(d, env, now); err != nil {
			return err
		}
		at, what, err := scheduleAt(d, env, now)
		if err != nil {
			return err
		}
		if err := s.predictFor(tx, d); err != nil { // with the front-ends connected now
			return err
		}
		d.ScheduledTime, d.RequirePrepared = at, requirePrepared || env.RequirePrepared
		note(d, now, actor, fmt.Sprintf("stage 2 scheduled for %s; predicted duration %s", what, d.PredictedStage2))
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.log.Info("deployment scheduled", "deployment", d.ID, "environment", d.Environment, "actor", actor, "scheduled_time", d.ScheduledTime)
	s.poke()
	s.watchers.publish(d)
	return d, nil
}

// CancelSchedule cancels the scheduled continue of a PREPARED deployment:
// it stays PREPARED, unscheduled. Errors: NotFound; FailedPrecondition if
// no continue is scheduled.
func (s *Service) CancelSchedule(ctx context.Context, actor, id string) (*model.Deployment, error) {
	return s.event(actor, id, func(d *model.Deployment, now time.Time) (string, error) {
		if err := checkCancelSchedule(d); err != nil {
			return "", err
		}
		msg := fmt.Sprintf("scheduled continue (%s) cancelled by %s; the deployment stays PREPARED", utc(d.ScheduledTime), actor)
		d.ScheduledTime = time.Time{}
		return msg, nil
	})
}

// checkCancelSchedule refuses to cancel a continue that is not scheduled.
func checkCancelSchedule(d *model.Deployment) error {
	if d.State != model.Prepared || d.ScheduledTime.IsZero() {
		return fmt.Errorf("deployment %s (%s) has no scheduled continue; nothing was changed: %w", d.ID, d.State, errkind.FailedPrecondition)
	}
	return nil
}

// Extend moves the expire time of a PREPARED, unexpired deployment later
// by by. Errors: NotFound; InvalidArgument for a non-positive by;
// FailedPrecondition if not PREPARED or expired.
func (s *Service) Extend(ctx context.Context, actor, id string, by time.Duration) (*model.Deployment, error) {
	return s.event(actor, id, func(d *model.Deployment, now time.Time) (string, error) {
		if err := checkExtend(d, by, now); err != nil {
			return "", err
		}
		d.ExpireTime = d.ExpireTime.Add(by)
		return fmt.Sprintf("extended by %s by %s: expires at %s", FormatTTL(by), actor, utc(d.ExpireTime)), nil
	})
}

// Approve records actor's approval of a deployment. Errors: NotFound;
// FailedPrecondition once stage 2 started, it ended, or it is approved
// already; PermissionDenied if actor created or prepared it.
func (s *Service) Approve(ctx context.Context, actor, id, comment string) (*model.Deployment, error) {
	return s.event(actor, id, func(d *model.Deployment, now time.Time) (string, error) {
		if err := checkApprove(d, actor); err != nil {
			return "", err
		}
		d.Approval = &model.Approval{Actor: actor, Time: now, Comment: comment}
		msg := "approved by " + actor
		if comment != "" {
			msg += ": " + comment
		}
		return msg, nil
	})
}

// event applies fn, a change that keeps d's state, and records the message
// it returns in the history; then the timer task looks again.
func (s *Service) event(actor, id string, fn func(d *model.Deployment, now time.Time) (string, error)) (*model.Deployment, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := s.update(id, func(tx model.Tx, d *model.Deployment) error {
		now := s.clock()
		msg, err := fn(d, now)
		if err != nil {
			return err
		}
		note(d, now, actor, msg)
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.log.Info("deployment event", "deployment", d.ID, "environment", d.Environment, "actor", actor, "event", d.History[len(d.History)-1].Message)
	s.poke()
	s.watchers.publish(d)
	return d, nil
}
