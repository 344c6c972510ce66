package fleetbench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/cutover-dev/cutover/fleetsim"
	"github.com/cutover-dev/cutover/internal/bench"
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

// untilEvery calls cond every every until it returns nil, alive says the
// simulated fleet stopped, ctx ends or timeout passes.
func untilEvery(ctx context.Context, timeout, every time.Duration, alive func() error, cond func() error) error {
	return poll.UntilEvery(ctx, timeout, every, func() error {
		err := cond()
		if err == nil {
			return nil
		}
		if stopped := alive(); stopped != nil {
			return poll.Permanent(fmt.Errorf("%w while: %w", stopped, err))
		}
		return err
	})
}

// scrapeEvery is how often WaitConnected reads the controller's metrics:
// a scrape computes every agent's drift (10,000 agents: about 140 MB
// allocated per scrape, in the heap profile of a run that scraped every
// 250 ms), so a large fleet is scraped every 2 s, as Prometheus would
// (every 15 s) only more often.
func scrapeEvery(n int) time.Duration {
	if n >= 1000 {
		return 2 * time.Second
	}
	return PollEvery
}

// WaitConnected waits until the controller counts n agents of
// Environment connected (cutover_agents_connected, on its metrics: listing
// 10,000 agents four times a second would load the controller being
// measured), then checks that it lists them. alive returns an error once
// the simulated fleet has stopped, which ends the wait.
func WaitConnected(ctx context.Context, c *localcluster.Cluster, n int, timeout time.Duration, alive func() error) error {
	err := untilEvery(ctx, timeout, scrapeEvery(n), alive, func() error {
		got, err := bench.Metric(c.ControllerMetricsAddr, "cutover_agents_connected", map[string]string{"environment": Environment})
		if err != nil {
			return err
		}
		if int(got) < n {
			return fmt.Errorf("%d of %d agents connected", int(got), n)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return Connected(ctx, c, n)
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

// WaitState waits until deployment id is in want, and fails if it ends
// in another final state or alive returns an error (the simulated fleet
// stopped). It follows the deployment as cutoverctl does
// (WatchDeployment, changed agents only): polling GetDeployment would
// have the controller read, decode and send every agent several times a
// second, which at 10,000 agents is the largest load on the controller
// being measured. It reads the whole deployment once at the end.
func WaitState(ctx context.Context, c *localcluster.Cluster, id string, want cutoverv1.DeploymentState, timeout time.Duration, alive func() error) (*cutoverv1.Deployment, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	states := make(chan cutoverv1.DeploymentState, 1)
	watched := make(chan error, 1)
	go func() { watched <- watchStates(ctx, c, id, states) }()
	tick := time.NewTicker(PollEvery)
	defer tick.Stop()
	last := cutoverv1.DeploymentState_DEPLOYMENT_STATE_UNSPECIFIED
	for last != want && !last.Final() {
		select {
		case last = <-states:
		case err := <-watched:
			select { // the watch may end right after the state it waited for
			case last = <-states:
				if last == want || last.Final() {
					continue
				}
			default:
			}
			return nil, fmt.Errorf("watch deployment %s (%s, want %s): %w", id, last, want, err)
		case <-tick.C:
			if stopped := alive(); stopped != nil {
				return nil, fmt.Errorf("%w while deployment %s was %s, want %s", stopped, id, last, want)
			}
		case <-ctx.Done():
			return nil, fmt.Errorf("deployment %s is %s, want %s: %w", id, last, want, ctx.Err())
		}
	}
	cancel() // the watch
	d, err := c.Admin.GetDeployment(context.WithoutCancel(ctx), &cutoverv1.GetDeploymentRequest{Id: id})
	if err != nil {
		return nil, err
	}
	if d.GetState() != want {
		return d, fmt.Errorf("%w %s (want %s): %s", errFinal, d.GetState(), want, d.GetError())
	}
	return d, nil
}

// watchStates sends each state deployment id takes on states (the latest
// one when the reader is behind) until ctx ends or the watch fails.
func watchStates(ctx context.Context, c *localcluster.Cluster, id string, states chan cutoverv1.DeploymentState) error {
	stream, err := c.Admin.WatchDeployment(ctx, &cutoverv1.WatchDeploymentRequest{Id: id, ChangedAgentsOnly: true})
	if err != nil {
		return err
	}
	for {
		ev, err := stream.Recv()
		if err != nil {
			return err
		}
		select { // keep only the latest
		case <-states:
		default:
		}
		states <- ev.GetDeployment().GetState()
	}
}

// setDefaults fills what a Config or PeerConfig left zero: the log
// (discarded), the timeout of each wait (10 min) and the simulated
// agents' directory (dir/agents).
func setDefaults(log *io.Writer, timeout *time.Duration, simDir *string, dir string) {
	if *log == nil {
		*log = io.Discard
	}
	if *timeout <= 0 {
		*timeout = 10 * time.Minute
	}
	if *simDir == "" {
		*simDir = filepath.Join(dir, "agents")
	}
}
