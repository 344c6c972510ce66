package stage

import (
	"context"
	"fmt"
	"os"
	"sort"

	"github.com/cutover-dev/cutover/agent/layout"
	"github.com/cutover-dev/cutover/agent/store"
	"github.com/cutover-dev/cutover/pkg/logging"
)

// Drop deletes releases, staged or being staged: their directories (with
// them the chunks only they held) and their records. It keeps, and skips
// with a log line, a release that `current` points to or that keep reports
// as needed.
func (s *Stager) Drop(ctx context.Context, releases []Release, keep func(Release) bool) error {
	for _, r := range releases {
		if err := layout.ValidRelease(r.Application, r.ID); err != nil {
			return fmt.Errorf("drop refused: %w", err)
		}
	}
	for _, r := range releases {
		if err := ctx.Err(); err != nil {
			return err
		}
		running, err := layout.Current(s.cfg.Root, r.Application)
		if err != nil {
			return err
		}
		if running == r.ID || (keep != nil && keep(r)) {
			s.cfg.Log.Warn("release not dropped: it runs or a rollback may need it", logging.KeyApplication, r.Application, logging.KeyRelease, r.ID)
			continue
		}
		if err := s.dropOne(r); err != nil {
			return err
		}
	}
	return s.updateStagedBytes()
}

func (s *Stager) dropOne(r Release) error {
	defer s.lock(r)()
	for _, dir := range []string{s.releaseDir(r), stagingDir(s.cfg.Root, r)} {
		if _, err := os.Lstat(dir); err == nil {
			if err := removeAside(layout.ReleasesDir(s.cfg.Root, r.Application), dir); err != nil {
				return fmt.Errorf("drop release %s of %q: %w", r.ID, r.Application, err)
			}
		}
	}
	err := s.cfg.Store.Update(func(tx *store.Tx) error {
		if err := tx.DeleteProgress(r.Application, r.ID); err != nil {
			return err
		}
		return tx.DeleteRelease(r.Application, r.ID)
	})
	if err != nil {
		return fmt.Errorf("drop release %s of %q: %w", r.ID, r.Application, err)
	}
	s.cfg.Log.Info("release dropped", logging.KeyApplication, r.Application, logging.KeyRelease, r.ID)
	return nil
}

// DefaultKeepReleases is how many staged releases per application Prune
// keeps besides the running one and those keep reports as needed.
const DefaultKeepReleases = 3

// Prune drops, per application, the staged releases beyond the keep most
// recently staged, never the running one nor one that needed reports as
// needed (a rollback's target).
func (s *Stager) Prune(ctx context.Context, keep int, needed func(Release) bool) error {
	var recs []*store.Release
	err := s.cfg.Store.View(func(tx *store.Tx) error {
		var err error
		recs, err = tx.ReleaseRecords()
		return err
	})
	if err != nil {
		return err
	}
	byApp := map[string][]*store.Release{}
	for _, r := range recs {
		if r.State == store.ReleaseStaged {
			byApp[r.Application] = append(byApp[r.Application], r)
		}
	}
	var drop []Release
	for _, rs := range byApp {
		sort.Slice(rs, func(i, j int) bool { return rs[i].UpdateTime.After(rs[j].UpdateTime) })
		for _, r := range rs[min(keep, len(rs)):] {
			drop = append(drop, Release{Application: r.Application, ID: r.ID})
		}
	}
	if len(drop) == 0 {
		return nil
	}
	if err := s.Drop(ctx, drop, needed); err != nil {
		s.cfg.Log.Warn("old staged releases could not all be dropped; the next activation tries again", "error", err)
		return err
	}
	return nil
}
