package session

import (
	"context"
	"fmt"
	"slices"
	"sort"

	"github.com/cutover-dev/cutover/agent/activate"
	"github.com/cutover-dev/cutover/agent/hook"
	"github.com/cutover-dev/cutover/agent/layout"
	"github.com/cutover-dev/cutover/agent/peer"
	"github.com/cutover-dev/cutover/agent/stage"
	"github.com/cutover-dev/cutover/pkg/appspec"
)

// Stager is what the Runner needs of *stage.Stager.
type Stager interface {
	Stage(ctx context.Context, releases []stage.Release, rate int64, progress func(stage.Progress)) (stage.Progress, error)
	Drop(ctx context.Context, releases []stage.Release, keep func(stage.Release) bool) error
	Staged() (map[string][]string, error)
	Reverify(ctx context.Context, releases []stage.Release) (stage.Progress, error)
	Prune(ctx context.Context, keep int, needed func(stage.Release) bool) error
	Check(releases []stage.Release) error
}

// Activator is what the Runner needs of *activate.Activator.
type Activator interface {
	Arm(ctx context.Context, id activate.ActivationID, releases []activate.Release) error
	Commit(ctx context.Context, id activate.ActivationID, releases []activate.Release, validate []appspec.HookRef, opt activate.CommitOptions) (activate.Result, []hook.Result, error)
	Finish(id activate.ActivationID, abort bool) bool
	Disarm(ctx context.Context, id activate.ActivationID) error
	RunHooks(ctx context.Context, command string, id activate.ActivationID, releases []activate.Release, hooks []appspec.HookRef) ([]hook.Result, error)
	Rollback(ctx context.Context, deployment string, apps []string) error
	StopApp(ctx context.Context, app string) error
	Needed(app, id string) bool
}

// Runner is the agent's Handler: stage and drop go to the Stager (which
// serializes work per release, so stages run concurrently with everything
// else); arm goes to the Stager (stage or verify every file) then to the
// Activator; commit, disarm, hooks, rollback and stop_app go to the
// Activator (which runs arms, commits, rollbacks and stops one at a time).
type Runner struct {
	Stager    Stager
	Activator Activator
	// Root is the agent's --root, read for the running releases.
	Root string
	// Peers, if set, is told the peers of each stage command before the
	// stage runs (agent/peer.Source).
	Peers Peers
}

// Peers is what the Runner needs of *peer.Source.
type Peers interface {
	Use(deployment string, releases []string, peers []peer.Peer, swarm *peer.Swarm)
}

var _ Handler = (*Runner)(nil)

// Handle runs cmd.
func (r *Runner) Handle(ctx context.Context, cmd Command, progress func(Report)) Report {
	rep := Report{CommandID: cmd.ID, Deployment: cmd.Deployment, RollbackAttempt: cmd.RollbackAttempt, Outcome: Done}
	id := activate.ActivationID{Deployment: cmd.Deployment, RollbackAttempt: cmd.RollbackAttempt}
	progressOf := func(p Report) Report { // a progress report of cmd
		p.CommandID, p.Deployment, p.RollbackAttempt, p.Outcome = cmd.ID, cmd.Deployment, cmd.RollbackAttempt, Progress
		return p
	}
	var err error
	if r.Peers != nil && (cmd.Kind == KindStage || cmd.Kind == KindArm) {
		ids := make([]string, len(cmd.Releases))
		for i, rel := range cmd.Releases {
			ids[i] = rel.ID
		}
		r.Peers.Use(cmd.Deployment, ids, cmd.Peers, cmd.Swarm)
	}
	switch cmd.Kind {
	case KindStage:
		var p stage.Progress
		p, err = r.Stager.Stage(ctx, toStage(cmd.Releases), cmd.StageRate, func(p stage.Progress) {
			progress(progressOf(Report{ReleaseBytes: p.ReleaseBytes, TransferredBytes: p.TransferredBytes}))
		})
		rep.ReleaseBytes, rep.TransferredBytes, rep.ReusedBytes = p.ReleaseBytes, p.TransferredBytes, p.ReusedBytes
	case KindArm:
		// Readiness re-check: a release staged here is re-verified, every
		// file hashed against the manifest, and repaired if damaged
		// (fetching only what the store lacks); one not staged (a
		// front-end that joined after prepare) is staged. With VerifyOnly,
		// either is a failure instead. Nothing running changes.
		var p stage.Progress
		p, err = r.readiness(ctx, cmd, func(p Report) { progress(progressOf(p)) })
		rep.ReleaseBytes, rep.TransferredBytes, rep.ReusedBytes = p.ReleaseBytes, p.TransferredBytes, p.ReusedBytes
		if err != nil {
			err = fmt.Errorf("readiness re-check before the swap (nothing was swapped): %w", err)
			break
		}
		err = r.Activator.Arm(ctx, id, toActivate(cmd.Releases))
	case KindCommit:
		var res activate.Result
		opt := activate.CommitOptions{Hold: cmd.Hold, Ready: func() {
			progress(progressOf(Report{Ready: true}))
		}}
		res, rep.Hooks, err = r.Activator.Commit(ctx, id, toActivate(cmd.Releases), cmd.Hooks, opt)
		rep.SwapTime, rep.SwappedBack, rep.Overlap = res.SwapTime, res.SwappedBack, res.Overlap
		if err == nil {
			// Old releases go once a new one runs; a failure to drop them is
			// logged by the Stager and does not fail the activation.
			keep := cmd.KeepReleases
			if keep <= 0 {
				keep = stage.DefaultKeepReleases
			}
			_ = r.Stager.Prune(ctx, keep, func(x stage.Release) bool {
				return r.Activator.Needed(x.Application, x.ID)
			})
		}
	case KindDisarm:
		err = r.Activator.Disarm(ctx, id)
	case KindHooks:
		// Journaled under cmd.ID: a resend answers from the journal.
		rep.Hooks, err = r.Activator.RunHooks(ctx, cmd.ID, id, toActivate(cmd.Releases), cmd.Hooks)
	case KindFinish:
		r.Activator.Finish(id, cmd.Abort)
		return Report{} // no report: the held commit's own follows
	case KindRollback:
		// A commit of the deployment that holds (its new processes beside
		// the old ones) goes back first; the rollback then finds it undone.
		r.Activator.Finish(id, true)
		err = r.Activator.Rollback(ctx, cmd.Deployment, cmd.Applications)
	case KindDrop:
		err = r.Stager.Drop(ctx, toStage(cmd.Releases), func(x stage.Release) bool {
			return r.Activator.Needed(x.Application, x.ID)
		})
	case KindStopApp:
		if len(cmd.Applications) != 1 {
			err = fmt.Errorf("stop_app names %d applications, want 1", len(cmd.Applications))
			break
		}
		err = r.Activator.StopApp(ctx, cmd.Applications[0])
	default:
		err = fmt.Errorf("unknown command kind %q", cmd.Kind)
	}
	if err != nil {
		rep.Outcome, rep.Error = Failed, err.Error()
	}
	return rep
}

// readiness re-verifies the staged releases of an arm command and stages
// the ones not staged, then re-verifies those too (only checks both with
// VerifyOnly); progress gets the bytes of each report.
func (r *Runner) readiness(ctx context.Context, cmd Command, progress func(Report)) (stage.Progress, error) {
	rels := toStage(cmd.Releases)
	if cmd.VerifyOnly {
		return stage.Progress{}, r.Stager.Check(rels)
	}
	staged, err := r.Stager.Staged()
	if err != nil {
		return stage.Progress{}, err
	}
	var have, lack []stage.Release
	for _, x := range rels {
		if slices.Contains(staged[x.Application], x.ID) {
			have = append(have, x)
		} else {
			lack = append(lack, x)
		}
	}
	p, err := r.Stager.Reverify(ctx, have)
	if err != nil || len(lack) == 0 {
		return p, err
	}
	q, err := r.Stager.Stage(ctx, lack, cmd.StageRate, func(q stage.Progress) {
		progress(Report{ReleaseBytes: q.ReleaseBytes, TransferredBytes: p.TransferredBytes + q.TransferredBytes})
	})
	q.TransferredBytes += p.TransferredBytes
	if err != nil {
		return q, err
	}
	// Verified whole as the others: a stage takes the bytes it clones or
	// copies from the agent's other staged releases without hashing them
	// again.
	v, err := r.Stager.Reverify(ctx, lack)
	q.TransferredBytes += v.TransferredBytes
	return q, err
}

func toActivate(rs []Release) []activate.Release {
	out := make([]activate.Release, len(rs))
	for i, x := range rs {
		out[i] = activate.Release{Application: x.Application, ID: x.ID}
	}
	return out
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
