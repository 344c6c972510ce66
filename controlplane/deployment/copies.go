package deployment

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/cutover-dev/cutover/controlplane/fleet"
	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/pkg/manifest"
)

// Copies says which other controllers do not hold a release's chunks yet:
// with several controllers on one etcd, a deployment is PREPARED only once
// every live controller holds its releases, so that a leader that dies
// after PREPARED leaves a successor able to arm, stage a late front-end
// and roll back (docs/architecture.md, "Release data").
// *copies.Copies is the real one; nil: one controller, nothing to wait for.
type Copies interface {
	// Lacking returns the live controllers, other than this one, that do
	// not hold every one of releases yet.
	Lacking(ctx context.Context, releases []string) ([]string, error)
	// Changed receives when that may have changed, until ctx ends.
	Changed(ctx context.Context) <-chan struct{}
}

// copiesRetry is how often a deployment that waits for copies is checked
// again when no change was seen (a read of etcd that failed).
const copiesRetry = 5 * time.Second

// waitCopies says whether d, whose agents all staged, must still wait for
// other controllers to hold its releases; it notes what it waits for in d
// when that changed. A failed read waits too, noted, and is tried again.
// Call with s.mu held.
func (s *Service) waitCopies(d *model.Deployment, now time.Time) bool {
	msg := s.awaited(d)
	if msg == "" {
		delete(s.awaitingCopies, d.ID)
		return false
	}
	if s.awaitingCopies[d.ID] != msg {
		noteOnce(d, now, ControllerActor, msg)
		s.log.Info("deployment waits for its releases on the other controllers", "deployment", d.ID, "environment", d.Environment, "waiting", msg)
	}
	s.awaitingCopies[d.ID] = msg
	return true
}

// awaited says what d waits for before PREPARED: "" for nothing.
func (s *Service) awaited(d *model.Deployment) string {
	if s.copies == nil {
		return ""
	}
	ctx := s.runCtx
	if ctx == nil {
		ctx = context.Background()
	}
	lacking, err := s.copies.Lacking(ctx, releaseIDs(d))
	switch {
	case err != nil:
		return fmt.Sprintf("every agent has the releases staged; waiting to learn which controllers hold them (%v)", err)
	case len(lacking) > 0:
		return fmt.Sprintf("every agent has the releases staged; waiting for the controllers %s to hold them too, so that another can take over", strings.Join(lacking, ", "))
	}
	return ""
}

// releaseIDs returns the releases d deploys.
func releaseIDs(d *model.Deployment) []string {
	ids := make([]string, 0, len(d.Applications))
	for _, a := range d.Applications {
		ids = append(ids, a.ReleaseID)
	}
	return ids
}

// recheckCopies takes the step to PREPARED of each deployment that waits
// for copies, if they are there now; it writes nothing while the wait is
// unchanged.
func (s *Service) recheckCopies() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id := range s.awaitingCopies {
		var out []fleet.Outgoing
		d, err := s.update(id, func(tx model.Tx, d *model.Deployment) error {
			st := next(d)
			switch {
			case d.State != model.Preparing || st.to != model.Prepared:
				delete(s.awaitingCopies, id)
				return errUnchanged
			case s.awaitingCopies[id] != "" && s.awaited(d) == s.awaitingCopies[id]:
				return errUnchanged // "": resumed, not checked yet
			}
			var err error
			out, err = s.take(tx, d, st)
			return err
		})
		switch {
		case err != nil:
			s.logFor(id).Error("check whether the controllers hold the releases", "deployment", id, "err", err)
		case d != nil:
			s.afterStep(d, out, false)
		}
	}
}

// resumeStaged, for a PREPARING deployment d that a controller resumes,
// ends it FAILED if this controller lacks a chunk of its releases (the
// leader that built them died before another controller held them), or,
// if every agent had staged, checks for copies again. Call with s.mu held;
// it says whether it ended d.
func (s *Service) resumeStaged(d *model.Deployment) (bool, error) {
	var lost []string
	if err := s.store.View(func(tx model.Tx) error {
		var err error
		lost, err = lostReleases(tx, d)
		return err
	}); err != nil {
		return false, fmt.Errorf("deployment %s: check its releases' chunks: %w", d.ID, err)
	}
	if len(lost) == 0 {
		if next(d).to == model.Prepared {
			s.awaitingCopies[d.ID] = "" // checked at Run's first turn
		}
		return false, nil
	}
	reason := fmt.Sprintf("stage 1 failed: this controller does not hold every chunk of %s (the controller that built them stopped before another held them); nothing runs differently on any front-end; prepare again", strings.Join(lost, ", "))
	e, err := s.update(d.ID, func(tx model.Tx, d *model.Deployment) error {
		if d.State != model.Preparing {
			return errUnchanged
		}
		transition(d, model.Failed, s.clock(), ControllerActor, reason)
		return nil
	})
	if e != nil {
		s.log.Error("deployment failed: its releases are not on this controller", "deployment", d.ID, "environment", d.Environment, "releases", lost)
		s.finished(e)
	}
	return e != nil, err
}

// lostReleases returns the releases of d of which this controller lacks a
// chunk: a leader that took over a prepare whose builder died before any
// other controller held its release.
func lostReleases(tx model.Tx, d *model.Deployment) ([]string, error) {
	var lost []string
	for _, id := range releaseIDs(d) {
		b, err := tx.Manifest(id)
		if err != nil {
			return nil, err
		}
		m, err := manifest.Decode(b)
		if err != nil {
			return nil, fmt.Errorf("release %s: %w", id, err)
		}
		for _, c := range m.ChunkIDs() {
			if !tx.HasChunk(c) {
				lost = append(lost, id)
				break
			}
		}
	}
	return lost, nil
}

// copiesAwaited says whether a deployment waits for copies.
func (s *Service) copiesAwaited() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.awaitingCopies) > 0
}
