package fleet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/pkg/appspec"
	"github.com/cutover-dev/cutover/pkg/errkind"
)

// StopTimeout bounds how long StopApplication waits for each agent.
const StopTimeout = 30 * time.Second

// StopResult is one agent's outcome of StopApplication.
type StopResult struct {
	Agent string
	// Error says why the agent did not stop the app; empty when it did.
	Error string
}

// StopApplication asks agents of env to stop app on purpose: each removes
// the app's `current` link and stops its process, so that the front-end
// runs nothing for it until a reconcile or the next deployment starts it
// again. agents empty means every connected agent of env. Every named
// agent is checked before anything is sent: nothing is sent to any agent
// unless all of them are connected agents of env. The calls run in
// parallel, each bounded by StopTimeout; the results are sorted by agent.
// Errors: InvalidArgument for a bad name; NotFound for an unknown
// environment; FailedPrecondition naming the agents not connected.
func (f *Fleet) StopApplication(ctx context.Context, env, app string, agents []string) ([]StopResult, error) {
	if err := appspec.ValidName(env); err != nil {
		return nil, fmt.Errorf("environment name: %w", err)
	}
	if err := appspec.ValidName(app); err != nil {
		return nil, fmt.Errorf("application name: %w", err)
	}
	for _, a := range agents {
		if err := appspec.ValidName(a); err != nil {
			return nil, fmt.Errorf("agent name: %w", err)
		}
	}
	if err := f.store.View(func(tx model.Tx) error {
		_, err := tx.Environment(env)
		return err
	}); err != nil {
		return nil, err
	}
	targets, err := f.stopTargets(env, agents)
	if err != nil {
		return nil, err
	}
	run := newCallID()
	out := make([]StopResult, len(targets))
	var wg sync.WaitGroup
	for i, name := range targets {
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, StopTimeout)
			defer cancel()
			cmd := Command{Kind: StopApp, ID: "stop." + app + "." + name + "." + run, Applications: []string{app}}
			out[i] = StopResult{Agent: name}
			r, err := f.Call(cctx, name, cmd)
			switch {
			case err != nil:
				out[i].Error = err.Error()
			case r.Outcome != Done:
				out[i].Error = r.Error
				if out[i].Error == "" {
					out[i].Error = "the agent failed to stop the application and said nothing more"
				}
			}
			f.log.Info("application stop", "environment", env, "agent", name, "application", app, "err", out[i].Error)
		})
	}
	wg.Wait()
	return out, nil
}

// stopTargets returns the agents to stop on, sorted and without
// duplicates: the named ones, each a connected agent of env, or every
// connected agent of env.
func (f *Fleet) stopTargets(env string, named []string) ([]string, error) {
	var connected []string
	for _, v := range f.Connected(env) {
		connected = append(connected, v.Name)
	}
	if len(named) == 0 {
		if len(connected) == 0 {
			return nil, fmt.Errorf("no agent of environment %s is connected; nothing was stopped: %w", env, errkind.FailedPrecondition)
		}
		return connected, nil
	}
	named = slices.Compact(slices.Sorted(slices.Values(named)))
	var missing []string
	for _, n := range named {
		if !slices.Contains(connected, n) {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("agent %s is not a connected agent of environment %s (see `cutoverctl agent list --environment %s`); nothing was sent to any agent: %w",
			strings.Join(missing, ", "), env, env, errkind.FailedPrecondition)
	}
	return named, nil
}

// newCallID returns a random id that makes command ids of calls unique.
func newCallID() string {
	var b [6]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24)
	return hex.EncodeToString(b[:])
}
