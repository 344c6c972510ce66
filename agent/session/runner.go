package session

import (
	"context"
	"fmt"
	"sort"

	"github.com/cutover-dev/cutover/agent/activate"
	"github.com/cutover-dev/cutover/agent/layout"
	"github.com/cutover-dev/cutover/agent/stage"
)

// Stager is what the Runner needs of *stage.Stager.
type Stager interface {
	Stage(ctx context.Context, releases []stage.Release, progress func(stage.Progress)) (stage.Progress, error)
	Drop(ctx context.Context, releases []stage.Release, keep func(stage.Release) bool) error
	Staged() (map[string][]string, error)
	Reverify(ctx context.Context, releases []stage.Release) (stage.Progress, error)
	Prune(ctx context.Context, keep int, needed func(stage.Release) bool) error
}

// Activator is what the Runner needs of *activate.Activator.
type Activator interface {
	Activate(ctx context.Context, deployment string, releases []activate.Release) (activate.Result, error)
	Rollback(ctx context.Context, deployment string, apps []string) error
	Needed(app, id string) bool
}

// Runner is the agent's Handler: stage and drop go to the Stager (which
// serializes work per release, so stages run concurrently with everything
// else), activate and rollback to the Activator (which runs them one at a
// time).
type Runner struct {
	Stager    Stager
	Activator Activator
	// Root is the agent's --root, read for the running releases.
	Root string
}

var _ Handler = (*Runner)(nil)

// Handle runs cmd.
func (r *Runner) Handle(ctx context.Context, cmd Command, progress func(Report)) Report {
	rep := Report{CommandID: cmd.ID, Deployment: cmd.Deployment, Outcome: Done}
	var err error
	switch cmd.Kind {
	case KindStage:
		var p stage.Progress
		p, err = r.Stager.Stage(ctx, toStage(cmd.Releases), func(p stage.Progress) {
			progress(Report{CommandID: cmd.ID, Deployment: cmd.Deployment, Outcome: Progress,
				ReleaseBytes: p.ReleaseBytes, TransferredBytes: p.TransferredBytes})
		})
		rep.ReleaseBytes, rep.TransferredBytes, rep.ReusedBytes = p.ReleaseBytes, p.TransferredBytes, p.ReusedBytes
	case KindActivate:
		// Readiness re-check: the staged files may have been damaged since
		// stage 1; repair them (fetching only what the store lacks) before
		// anything is swapped.
		if _, err = r.Stager.Reverify(ctx, toStage(cmd.Releases)); err != nil {
			err = fmt.Errorf("re-verify the staged releases before the swap (nothing was swapped): %w", err)
			break
		}
		rels := make([]activate.Release, len(cmd.Releases))
		for i, x := range cmd.Releases {
			rels[i] = activate.Release{Application: x.Application, ID: x.ID}
		}
		var res activate.Result
		res, err = r.Activator.Activate(ctx, cmd.Deployment, rels)
		rep.SwapTime, rep.SwappedBack = res.SwapTime, res.SwappedBack
		if err == nil {
			// Old releases go once a new one runs; a failure to drop them is
			// logged by the Stager and does not fail the activation.
			_ = r.Stager.Prune(ctx, stage.DefaultKeepReleases, func(x stage.Release) bool {
				return r.Activator.Needed(x.Application, x.ID)
			})
		}
	case KindRollback:
		err = r.Activator.Rollback(ctx, cmd.Deployment, cmd.Applications)
	case KindDrop:
		err = r.Stager.Drop(ctx, toStage(cmd.Releases), func(x stage.Release) bool {
			return r.Activator.Needed(x.Application, x.ID)
		})
	default:
		err = fmt.Errorf("unknown command kind %q", cmd.Kind)
	}
	if err != nil {
		rep.Outcome, rep.Error = Failed, err.Error()
	}
	return rep
}

func toStage(rs []Release) []stage.Release {
	out := make([]stage.Release, len(rs))
	for i, x := range rs {
		out[i] = stage.Release{Application: x.Application, ID: x.ID}
	}
	return out
}

// Status returns, per application under Root or staged, the running release
// and the staged ones.
func (r *Runner) Status() ([]AppStatus, error) {
	staged, err := r.Stager.Staged()
	if err != nil {
		return nil, err
	}
	apps, err := layout.Apps(r.Root)
	if err != nil {
		return nil, err
	}
	names := map[string]bool{}
	for _, a := range apps {
		names[a] = true
	}
	for a := range staged {
		names[a] = true
	}
	out := make([]AppStatus, 0, len(names))
	for name := range names {
		running, err := layout.Current(r.Root, name)
		if err != nil {
			running = "" // a broken `current` runs nothing we know of
		}
		ids := append([]string(nil), staged[name]...)
		sort.Strings(ids)
		out = append(out, AppStatus{Name: name, Running: running, Staged: ids})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
