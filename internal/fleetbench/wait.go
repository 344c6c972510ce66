package fleetbench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cutover-dev/cutover/fleetsim"
	"github.com/cutover-dev/cutover/internal/localcluster"
	"github.com/cutover-dev/cutover/pkg/poll"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// PollEvery is how often the waits ask the controller. Not pkg/poll's
// 20 ms: with thousands of agents each answer lists them all, and asking
// fifty times a second would load the controller being measured. The
// figures come from the deployment's own timestamps, not from when a
// poll saw them.
const PollEvery = 250 * time.Millisecond

// running is the simulated fleet running in the background: in this
// process (runSim) or in cutover-fleetsim processes (startSims).
type running struct {
	// alive returns nil while every simulator runs, else why one stopped.
	alive func() error
	// stop stops every simulator and returns the first error of one.
	stop func() error
}

// runSim runs sim in this process until stop is called or ctx ends.
func runSim(ctx context.Context, sim *fleetsim.Sim) *running {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	var err error
	go func() {
		err = sim.Run(ctx)
		close(done)
	}()
	return &running{
		alive: func() error {
			select {
			case <-done:
				return fmt.Errorf("the simulator stopped (%v)", err)
			default:
				return nil
			}
		},
		stop: func() error {
			cancel()
			<-done
			return err
		},
	}
}

// wait stops the simulated fleet and returns its error.
func (r *running) wait() error { return r.stop() }

// until calls cond every PollEvery until it returns nil, the simulator
// stops, ctx ends or timeout passes.
func until(ctx context.Context, timeout time.Duration, sim *running, cond func() error) error {
	return poll.UntilEvery(ctx, timeout, PollEvery, func() error {
		err := cond()
		if err == nil {
			return nil
		}
		if stopped := sim.alive(); stopped != nil {
			return poll.Permanent(fmt.Errorf("%w while: %w", stopped, err))
		}
		return err
	})
}

// waitListed waits until the controller lists n agents of Environment connected.
func waitListed(ctx context.Context, c *localcluster.Cluster, n int, timeout time.Duration, sim *running) error {
	return until(ctx, timeout, sim, func() error { return Connected(ctx, c, n) })
}

// Connected returns nil when the controller lists n agents of Environment
// connected, else an error that says how many are.
func Connected(ctx context.Context, c *localcluster.Cluster, n int) error {
	resp, err := c.Admin.ListAgents(ctx, &cutoverv1.ListAgentsRequest{Environment: Environment})
	if err != nil {
		return err
	}
	connected := 0
	for _, a := range resp.GetAgents() {
		if a.GetConnected() {
			connected++
		}
	}
	if connected < n {
		return fmt.Errorf("%d of %d agents connected", connected, n)
	}
	return nil
}

// errFinal is a deployment that ended in another final state than wanted.
var errFinal = errors.New("deployment ended")

// waitState waits until deployment id is in want, and fails if it ends
// in another final state.
func waitState(ctx context.Context, c *localcluster.Cluster, id string, want cutoverv1.DeploymentState, timeout time.Duration, sim *running) (*cutoverv1.Deployment, error) {
	var d *cutoverv1.Deployment
	var final error
	err := until(ctx, timeout, sim, func() error {
		var err error
		if d, err = c.Admin.GetDeployment(ctx, &cutoverv1.GetDeploymentRequest{Id: id}); err != nil {
			return err
		}
		switch {
		case d.GetState() == want:
			return nil
		case d.GetState().Final():
			final = fmt.Errorf("%w %s (want %s): %s", errFinal, d.GetState(), want, d.GetError())
			return nil
		}
		return fmt.Errorf("deployment %s is %s, want %s", id, d.GetState(), want)
	})
	if err == nil {
		err = final
	}
	return d, err
}
