package deployment

import (
	"fmt"
	"strings"
	"time"

	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/pkg/errkind"
	"github.com/cutover-dev/cutover/pkg/window"
)

// This file holds the rules around stage 2's timing and permission:
// deployment windows, forcing, scheduling at a window, the prediction of
// stage 2's duration, expiry and approval. They are pure functions of the
// deployment, its environment and the time.

// ContinueOptions are the choices of a continue (or start) request.
type ContinueOptions struct {
	// Force starts stage 2 although no deployment window is open.
	Force bool
	// ForceReason says why; required with Force, recorded in the history.
	ForceReason string
	// AtWindow schedules stage 2 for the next window opening instead of
	// starting it now (continue only).
	AtWindow bool
	// RequirePrepared refuses to continue when a connected agent does not
	// hold the releases (instead of staging them first), and fails stage 2
	// when a staged release was damaged (instead of staging it again).
	RequirePrepared bool
}

// validate refuses inconsistent options.
func (o ContinueOptions) validate() error {
	switch {
	case o.Force && strings.TrimSpace(o.ForceReason) == "":
		return fmt.Errorf("force needs a reason (force_reason, --reason \"...\"): it is recorded in the deployment's history; nothing was changed: %w", errkind.InvalidArgument)
	case !o.Force && o.ForceReason != "":
		return fmt.Errorf("force_reason is only meaningful with force; nothing was changed: %w", errkind.InvalidArgument)
	case o.Force && o.AtWindow:
		return fmt.Errorf("force and at_window contradict each other: force starts now, at_window waits for a window; choose one; nothing was changed: %w", errkind.InvalidArgument)
	}
	return nil
}

// horizon bounds the search for window openings and closings: windows
// repeat weekly, so a week and a day sees every pattern.
const horizon = 8 * 24 * time.Hour

// fits says whether a stage 2 of duration d started at t ends before the
// window open at t closes.
func fits(sched window.Schedule, t time.Time, d time.Duration) (bool, time.Time) {
	open, closes := sched.OpenUntil(t)
	return open && (closes.IsZero() || !t.Add(d).After(closes)), closes
}

// firstFit returns the first time after t at which a window opens that is
// long enough for a stage 2 of duration d, and false when none opens
// within the horizon.
func firstFit(sched window.Schedule, t time.Time, d time.Duration) (window.Opening, bool) {
	for at := t; at.Sub(t) <= horizon; {
		o, ok := sched.Next(at)
		if !ok {
			return window.Opening{}, false
		}
		if ok, _ := fits(sched, o.Open, d); ok {
			return o, true
		}
		at = o.Open
	}
	return window.Opening{}, false
}

// utc renders t for messages: RFC 3339 in UTC.
func utc(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// checkWindow refuses stage 2 (verb: "continue" or "start") when no window
// of env is open at now, unless opt.Force. It returns what to record in the
// history when the start is forced. stays is the state the deployment
// keeps when refused.
func checkWindow(d *model.Deployment, env *model.Environment, now time.Time, opt ContinueOptions, verb string) (string, error) {
	next, closed, err := windowClosed(env, now)
	if err != nil {
		return "", err
	}
	if !closed {
		if opt.Force {
			return fmt.Sprintf("force requested (%s), though a deployment window was open anyway", opt.ForceReason), nil
		}
		return "", nil
	}
	if opt.Force {
		return fmt.Sprintf("forced outside the deployment windows (%s): %s", strings.Join(env.Windows, "; "), opt.ForceReason), nil
	}
	options := []string{verb + " then"}
	switch {
	case d.State == model.Prepared:
		options = append(options, fmt.Sprintf("schedule it with `cutoverctl deploy continue %s --at-window`", d.ID))
	case env.TwoStage:
		options = append(options, fmt.Sprintf("prepare it now and schedule stage 2 with `cutoverctl deploy continue %s --at-window`", d.ID))
	}
	options = append(options, `override with --force --reason "..."`)
	return "", fmt.Errorf("no deployment window of environment %s is open now (%s); the next opens %s: %s; deployment %s stays %s: %w",
		env.Name, utc(now), next.Describe(), strings.Join(options, ", or "), d.ID, d.State, errkind.FailedPrecondition)
}

// WindowStatus is where an environment's deployment windows stand at a
// given time.
type WindowStatus struct {
	// Open says a window is open now (always true without windows).
	Open bool
	// Closes is when the open window closes; zero without windows, or
	// when none is open.
	Closes time.Time
	// Next describes the next opening, in the window's zone and in UTC;
	// empty without windows.
	Next string
	// NextOpen is the next opening when no window is open; zero otherwise.
	NextOpen time.Time
}

// Windows returns the state of env's deployment windows at now. Stored
// windows were validated; windows that no longer parse count as none.
func Windows(env *model.Environment, now time.Time) WindowStatus {
	sched, err := window.ParseAll(env.Windows)
	if err != nil {
		return WindowStatus{Open: true}
	}
	var w WindowStatus
	var closes time.Time
	w.Open, closes = sched.OpenUntil(now)
	if len(sched) > 0 && w.Open {
		w.Closes = closes
	}
	if next, ok := sched.Next(now); ok {
		w.Next = next.Describe()
		if !w.Open {
			w.NextOpen = next.Open
		}
	}
	return w
}

// windowClosed says whether env has windows and none is open at now, and
// if so, the next opening. An environment without windows is never closed.
func windowClosed(env *model.Environment, now time.Time) (window.Opening, bool, error) {
	sched, err := window.ParseAll(env.Windows)
	if err != nil { // validated when stored: a bug, or a hand-edited file
		return window.Opening{}, false, fmt.Errorf("environment %s: %w", env.Name, err)
	}
	if open, _ := sched.Open(now); open {
		return window.Opening{}, false, nil
	}
	next, _ := sched.Next(now) // a closed schedule has windows
	return next, true, nil
}

// checkWindowAfterStage1 is the window rule again for a single-stage
// deployment whose stage 1 just ended: a long build or transfer may have
// outlasted the window Start was checked against. Unless the start was
// forced, it returns why stage 2 must not begin ("" when it may).
func checkWindowAfterStage1(d *model.Deployment, env *model.Environment, now time.Time) (string, error) {
	if d.StartForced {
		return "", nil
	}
	next, closed, err := windowClosed(env, now)
	if err != nil || !closed {
		return "", err
	}
	return fmt.Sprintf("stage 1 finished at %s, after the deployment windows of environment %s (%s) had closed; nothing was swapped and the database was not changed, every front-end runs what it ran before: create the deployment again and start it in the next window, which opens %s, or make the environment two-stage (`cutoverctl env update %s --two-stage`), prepare a new deployment and run `cutoverctl deploy continue NEW_ID --at-window`",
		utc(now), env.Name, strings.Join(env.Windows, "; "), next.Describe(), env.Name), nil
}

// checkApproval refuses stage 2 of a deployment that needs an approval it
// does not have.
func checkApproval(d *model.Deployment, env *model.Environment) error {
	if !env.RequireApproval || d.Approval != nil {
		return nil
	}
	return fmt.Errorf("deployment %s needs an approval (environment %s sets require_approval): approve it with `cutoverctl deploy approve %s`, then retry; it stays %s: %w",
		d.ID, env.Name, d.ID, d.State, errkind.FailedPrecondition)
}

// checkApprove refuses an approval of a deployment past the point where it
// matters, or approved already, or by a subject who created or prepared
// it (four eyes: an approver never approves their own change).
func checkApprove(d *model.Deployment, actor string) error {
	for _, t := range d.History {
		if (t.State == model.Planned || t.State == model.Preparing) && t.Actor == actor {
			what := "created"
			if t.State == model.Preparing {
				what = "prepared"
			}
			return fmt.Errorf("%s %s deployment %s, so may not approve it: another approver must; nothing was changed: %w",
				actor, what, d.ID, errkind.PermissionDenied)
		}
	}
	if d.State != model.Planned && d.State != model.Preparing && d.State != model.Prepared {
		return fmt.Errorf("deployment %s is %s: only a PLANNED, PREPARING or PREPARED deployment can be approved; nothing was changed: %w",
			d.ID, d.State, errkind.FailedPrecondition)
	}
	if a := d.Approval; a != nil {
		return fmt.Errorf("deployment %s was approved already by %s at %s; nothing was changed: %w",
			d.ID, a.Actor, utc(a.Time), errkind.FailedPrecondition)
	}
	return nil
}

// expired says whether d is past its expiry at now: EXPIRED, or PREPARED
// with an expire time that has come.
func expired(d *model.Deployment, now time.Time) bool {
	return d.State == model.Expired || (d.State == model.Prepared && !d.ExpireTime.IsZero() && !now.Before(d.ExpireTime))
}

// expiredError is the error for a continue (or extend) of an expired
// deployment. Its message is exactly
// "deployment D expired at T (prepared_ttl 96h); prepare it again".
func expiredError(d *model.Deployment) error {
	ttl := d.PreparedTTL
	if ttl == 0 && !d.PreparedTime.IsZero() {
		ttl = d.ExpireTime.Sub(d.PreparedTime)
	}
	return errkind.New(errkind.FailedPrecondition,
		fmt.Sprintf("deployment %s expired at %s (prepared_ttl %s); prepare it again", d.ID, utc(d.ExpireTime), FormatTTL(ttl)))
}

// FormatTTL renders a duration as Go does, without its zero minutes and
// seconds: 96h, 1h30m, 2s.
func FormatTTL(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// checkExtend refuses to extend a deployment that is not PREPARED or has
// expired, or by a non-positive duration.
func checkExtend(d *model.Deployment, by time.Duration, now time.Time) error {
	if by <= 0 {
		return fmt.Errorf("extend by %s: give a positive duration such as 24h; nothing was changed: %w", by, errkind.InvalidArgument)
	}
	if expired(d, now) {
		return expiredError(d)
	}
	if d.State != model.Prepared {
		return fmt.Errorf("deployment %s is %s: only a PREPARED deployment can be extended; nothing was changed: %w", d.ID, d.State, errkind.FailedPrecondition)
	}
	return nil
}

// scheduleAt decides when a continue at the window starts stage 2: now if
// a window is open, else at the next opening. It refuses when the
// environment has no window or the opening comes after the deployment
// expires.
func scheduleAt(d *model.Deployment, env *model.Environment, now time.Time) (time.Time, string, error) {
	sched, err := window.ParseAll(env.Windows)
	if err != nil {
		return time.Time{}, "", fmt.Errorf("environment %s: %w", env.Name, err)
	}
	if len(sched) == 0 {
		return time.Time{}, "", fmt.Errorf("environment %s has no deployment windows, so there is nothing to wait for: continue without --at-window; deployment %s stays PREPARED: %w",
			env.Name, d.ID, errkind.FailedPrecondition)
	}
	at, what := now, "now: a deployment window is open"
	if open, _ := sched.Open(now); !open {
		next, _ := sched.Next(now)
		at, what = next.Open, next.Describe()
	}
	if !d.ExpireTime.IsZero() && !at.Before(d.ExpireTime) {
		return time.Time{}, "", fmt.Errorf("the next deployment window opens at %s, after deployment %s expires (%s): extend it first (`cutoverctl deploy extend %s --by 24h`); it stays PREPARED, unscheduled: %w",
			utc(at), d.ID, utc(d.ExpireTime), d.ID, errkind.FailedPrecondition)
	}
	return at, what, nil
}

// retryScheduled is how soon a scheduled stage 2 that could not start on
// the agents is tried again, within the same window.
const retryScheduled = 30 * time.Second

// scheduledStep is what the controller does with a scheduled deployment
// whose time has come.
type scheduledStep struct {
	// start: begin stage 2 now.
	start bool
	// reschedule, when not zero, is the new scheduled time.
	reschedule time.Time
	// reason says why it did not start (history).
	reason string
}

// decideScheduled decides what happens to PREPARED deployment d, scheduled
// at or before now. problems is what keeps stage 2 from starting on the
// agents ("" when nothing does). Without a start or a reschedule the
// schedule is cancelled, for reason.
func decideScheduled(d *model.Deployment, env *model.Environment, now time.Time, problems string) scheduledStep {
	if err := checkApproval(d, env); err != nil {
		return scheduledStep{reason: fmt.Sprintf("scheduled stage 2 not started: deployment %s needs an approval (environment %s sets require_approval); the schedule is cancelled: approve it, then continue", d.ID, env.Name)}
	}
	sched, err := window.ParseAll(env.Windows)
	if err != nil {
		return scheduledStep{reason: fmt.Sprintf("scheduled stage 2 not started: environment %s: %v; the schedule is cancelled", env.Name, err)}
	}
	pred := d.PredictedStage2
	ok, closes := fits(sched, now, pred)
	if ok && problems == "" {
		return scheduledStep{start: true}
	}
	var why string
	switch {
	case problems != "":
		why = "it cannot start: " + problems
	case closes.IsZero():
		why = fmt.Sprintf("no deployment window is open at %s", utc(now))
	default:
		why = fmt.Sprintf("its predicted duration %s would end at %s, after the window closes at %s", pred, utc(now.Add(pred)), utc(closes))
	}
	if problems != "" {
		// The agents may come back (as after a controller restart): retry
		// while the window still has room for stage 2.
		if retry := now.Add(retryScheduled); retry.Before(d.ExpireTime) || d.ExpireTime.IsZero() {
			if ok, _ := fits(sched, retry, pred); ok {
				return scheduledStep{reschedule: retry, reason: fmt.Sprintf("scheduled stage 2 not started: %s; retrying every %s while the window has room for it", why, retryScheduled)}
			}
		}
	}
	next, found := firstFit(sched, now, pred)
	switch {
	case !found:
		return scheduledStep{reason: fmt.Sprintf("scheduled stage 2 not started: %s, and no deployment window in the next %s is long enough for it; the schedule is cancelled: continue with --force, or widen the windows", why, FormatTTL(horizon))}
	case !d.ExpireTime.IsZero() && !next.Open.Before(d.ExpireTime):
		return scheduledStep{reason: fmt.Sprintf("scheduled stage 2 not started: %s, and the next window long enough (%s) opens after the deployment expires at %s; the schedule is cancelled: extend it and schedule it again", why, utc(next.Open), utc(d.ExpireTime))}
	}
	return scheduledStep{reschedule: next.Open, reason: fmt.Sprintf("scheduled stage 2 not started: %s; rescheduled for %s", why, next.Describe())}
}

// note records an event that does not change d's state in its history.
func note(d *model.Deployment, now time.Time, actor, msg string) {
	d.History = append(d.History, model.Transition{State: d.State, Time: now, Actor: actor, Message: msg})
}

// noteOnce records an event like note, unless the last entry says the same
// (a retry that failed for the same reason): then only its time moves.
func noteOnce(d *model.Deployment, now time.Time, actor, msg string) {
	if n := len(d.History); n > 0 {
		if last := &d.History[n-1]; last.State == d.State && last.Actor == actor && last.Message == msg {
			last.Time = now
			return
		}
	}
	note(d, now, actor, msg)
}
