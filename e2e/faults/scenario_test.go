package faults

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cutover-dev/cutover/pkg/poll"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// deploy makes the plan's deployments one after the other.
func (r *run) deploy(ctx context.Context) {
	for i, step := range r.plan.Steps {
		d := &dep{step: step, index: i + 1}
		if err := r.writeSource(d.index, step.Version); err != nil {
			r.t.Fatal(err)
		}
		created, err := r.call(ctx, "CreateDeployment "+step.Version, nil, func(ctx context.Context) (*cutoverv1.Deployment, error) {
			return r.c.Admin.CreateDeployment(ctx, &cutoverv1.CreateDeploymentRequest{Environment: env,
				Applications: []*cutoverv1.ApplicationVersion{{Name: app, VersionLabel: step.Version}}})
		})
		if err != nil {
			r.violation("CreateDeployment %s refused or unanswered for %s: %v", step.Version, callBound, err)
			return
		}
		d.id = created.GetId()
		d.acked = append(d.acked, created.GetState())
		r.mu.Lock()
		r.deps = append(r.deps, d)
		r.mu.Unlock()
		r.event("%s: created %s (%s)", step.Version, d.id, short(created.GetState()))

		ok := r.stage(ctx, d)
		for _, p := range []Phase{Stage1, Stage2, Rollback} { // faults that follow a phase this deployment skipped come now
			r.reach(i, p)
		}
		if !ok {
			return // the environment may be blocked: the next deployment cannot start
		}
	}
}

// stage drives d through its step; false when it did not settle.
func (r *run) stage(ctx context.Context, d *dep) bool {
	var err error
	if d.step.Single {
		err = r.act(ctx, d, "StartDeployment", func(ctx context.Context) (*cutoverv1.Deployment, error) {
			return r.c.Admin.StartDeployment(ctx, &cutoverv1.StartDeploymentRequest{Id: d.id})
		})
		r.reach(d.index-1, Stage1)
	} else {
		err = r.act(ctx, d, "PrepareDeployment", func(ctx context.Context) (*cutoverv1.Deployment, error) {
			return r.c.Admin.PrepareDeployment(ctx, &cutoverv1.PrepareDeploymentRequest{Id: d.id})
		})
		r.reach(d.index-1, Stage1)
		if err == nil && !r.wait(ctx, d, cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED) {
			return false
		}
		if err == nil && d.step.PrepareOnly {
			return true
		}
		if err == nil && d.last.GetState() == cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED {
			err = r.act(ctx, d, "ContinueDeployment", func(ctx context.Context) (*cutoverv1.Deployment, error) {
				return r.c.Admin.ContinueDeployment(ctx, &cutoverv1.ContinueDeploymentRequest{Id: d.id})
			})
			r.reach(d.index-1, Stage2)
		}
	}
	if err != nil && status.Code(errors.Unwrap(err)) == codes.FailedPrecondition && d.last.GetState() == cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED {
		r.violation("%s stays PREPARED: continue refused for %s after the faults: %v", d.id, refusedBound, err)
		return false
	}
	if err != nil {
		r.event("%s: %v", d.id, err)
	}
	if !r.wait(ctx, d, cutoverv1.DeploymentState_DEPLOYMENT_STATE_UNSPECIFIED) {
		return false
	}
	if d.step.Rollback && d.last.GetState() == cutoverv1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED {
		return r.rollback(ctx, d)
	}
	return true
}

// rollbackAttempts is how many times the run asks for a rollback that
// stops (a hook interrupted by a fault, say) before it gives up.
const rollbackAttempts = 3

// rollback rolls d back, and asks again, as its error says, when the
// rollback stops with the deployment still DEPLOYED; false when it did not
// settle.
func (r *run) rollback(ctx context.Context, d *dep) bool {
	for attempt := 1; ; attempt++ {
		d.rollbackErr = d.last.GetError()
		err := r.act(ctx, d, "RollbackDeployment", func(ctx context.Context) (*cutoverv1.Deployment, error) {
			return r.c.Admin.RollbackDeployment(ctx, &cutoverv1.RollbackDeploymentRequest{Id: d.id, Reason: "fault suite"})
		})
		r.reach(d.index-1, Rollback)
		if err != nil {
			r.event("%s: %v", d.id, err)
			return true
		}
		d.rollback = true
		if !r.wait(ctx, d, cutoverv1.DeploymentState_DEPLOYMENT_STATE_ROLLED_BACK) {
			return false
		}
		if d.last.GetState() != cutoverv1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED {
			return true
		}
		if attempt == rollbackAttempts {
			r.event("%s: the rollback stopped %d times; the run leaves it DEPLOYED", d.id, attempt)
			return true
		}
		r.event("%s: the rollback stopped (still DEPLOYED); asking again, as its error says", d.id)
		d.rollbackRetries++
	}
}

// act sends one state-changing request for d and records the state it
// acknowledged. A request retried after an unanswered one may find its
// work already done: FAILED_PRECONDITION is then read as done if the
// deployment has moved on.
func (r *run) act(ctx context.Context, d *dep, method string, f func(context.Context) (*cutoverv1.Deployment, error)) error {
	before := d.last.GetState()
	if before == cutoverv1.DeploymentState_DEPLOYMENT_STATE_UNSPECIFIED {
		before = cutoverv1.DeploymentState_DEPLOYMENT_STATE_PLANNED
	}
	got, err := r.call(ctx, method+" "+d.id, func(ctx context.Context) bool {
		cur, err := r.c.Admin.GetDeployment(ctx, &cutoverv1.GetDeploymentRequest{Id: d.id})
		return err == nil && (rank(cur.GetState()) > rank(before) || method == "RollbackDeployment" && cur.GetState() == cutoverv1.DeploymentState_DEPLOYMENT_STATE_ROLLED_BACK)
	}, f)
	if err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	if got != nil {
		d.acked = append(d.acked, got.GetState())
		d.last = got
		r.event("%s: %s acknowledged %s", d.id, method, short(got.GetState()))
	} else {
		r.event("%s: %s had landed before its answer was lost", d.id, method)
	}
	return nil
}

// call sends a request, retrying while the controller is unreachable, for
// up to callBound, and while it refuses with FAILED_PRECONDITION because
// agents are not connected (again, after a fault), for up to refusedBound. landed, if set, says after a FAILED_PRECONDITION that
// follows an unanswered attempt whether that attempt did the work; call
// then returns nil, nil.
func (r *run) call(ctx context.Context, what string, landed func(context.Context) bool, f func(context.Context) (*cutoverv1.Deployment, error)) (*cutoverv1.Deployment, error) {
	deadline, refusedUntil := time.Now().Add(callBound), time.Now().Add(refusedBound)
	unanswered := false
	for {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		d, err := f(rctx)
		cancel()
		if err == nil {
			return d, nil
		}
		code := status.Code(err)
		if code == codes.FailedPrecondition && unanswered && landed != nil {
			lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			ok := landed(lctx)
			cancel()
			if ok {
				return nil, nil
			}
		}
		if code == codes.FailedPrecondition && strings.Contains(err.Error(), "not connected") && time.Now().Before(refusedUntil) && ctx.Err() == nil {
			// Agents not connected again yet after a fault, say: an operator would retry.
			r.event("%s: %v; retrying", what, err)
			time.Sleep(time.Second)
			continue
		}
		if code != codes.Unavailable && code != codes.DeadlineExceeded && code != codes.Canceled || time.Now().After(deadline) || ctx.Err() != nil {
			return nil, err
		}
		unanswered = true
		r.event("%s: %s; retrying", what, code)
		time.Sleep(500 * time.Millisecond)
	}
}

// wait polls d until it is final, or in want, within finalBound; it
// records every state seen. False (and a violation) when the bound passes.
func (r *run) wait(ctx context.Context, d *dep, want cutoverv1.DeploymentState) bool {
	var lastErr error
	err := poll.Until(ctx, finalBound, func() error {
		gctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		got, err := r.c.Admin.GetDeployment(gctx, &cutoverv1.GetDeploymentRequest{Id: d.id})
		cancel()
		if err != nil {
			lastErr = err
			return err
		}
		d.last = got
		s := got.GetState()
		if len(d.seen) == 0 || d.seen[len(d.seen)-1] != s {
			d.seen = append(d.seen, s)
			if e := got.GetError(); e != "" {
				r.event("%s: %s: %s", d.id, short(s), e)
			} else {
				r.event("%s: %s", d.id, short(s))
			}
			if s == cutoverv1.DeploymentState_DEPLOYMENT_STATE_ACTIVATING {
				r.reach(d.index-1, Stage2)
			}
		}
		if s == want || s.Final() && !(want == cutoverv1.DeploymentState_DEPLOYMENT_STATE_ROLLED_BACK && s == cutoverv1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED) {
			return nil
		}
		if want != cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED && s == cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED &&
			slices.Contains(d.seen, cutoverv1.DeploymentState_DEPLOYMENT_STATE_ACTIVATING) && !d.abortedAgain {
			// Stage 2 ended before anything changed (a deadline passed, a
			// step failed): PREPARED again, as issue 13 wants. The operator
			// here gives up on it, so that the environment is free.
			d.abortedAgain = true
			r.event("%s: PREPARED again after stage 2; aborting it", d.id)
			actx, cancel := context.WithTimeout(ctx, 10*time.Second)
			_, err := r.c.Admin.AbortDeployment(actx, &cutoverv1.AbortDeploymentRequest{Id: d.id, Reason: "fault suite: stage 2 ended before any swap"})
			cancel()
			if err != nil {
				r.event("%s: abort: %v", d.id, err)
			}
		}
		if want == cutoverv1.DeploymentState_DEPLOYMENT_STATE_ROLLED_BACK && s == cutoverv1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED &&
			got.GetError() != "" && got.GetError() != d.rollbackErr {
			r.event("%s: rollback stopped: %s", d.id, got.GetError())
			return nil // the rollback stopped
		}
		return fmt.Errorf("still %s", short(s))
	})
	if err == nil {
		return true
	}
	d.stuck = true
	r.violation("deployment %s (%s) not final within %s: still %s (last error %v); error %q; now:%s", d.id, d.step, finalBound, short(d.last.GetState()), lastErr, d.last.GetError(),
		r.explain(ctx, d.id))
	return false
}
