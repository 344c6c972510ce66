// Package stage brings releases onto the agent without touching what runs:
// it fetches a release's manifest and checks it against the release id,
// then fills the release's files in a staging directory beside
// ROOT/<app>/releases/<id>/: each chunk is written straight to its places
// in the files, copied from a release this agent already holds or else
// fetched from the controller, and verified against its SHA-256 before it
// is written. Files are fsynced and the written positions recorded in the
// agent's store in batches, so that an interrupted staging resumes where it
// was. Then modes and symlinks are set, the tree is checked against the
// manifest, renamed into place, and the release recorded as staged.
//
// The releases' files are the only copy of the chunks on the agent: every
// byte is written durably once. Staged releases are read-only on disk, and
// a file identical to one of a staged release is cloned from it whole
// (clone.go).
package stage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cutover-dev/cutover/agent/layout"
	"github.com/cutover-dev/cutover/agent/store"
	"github.com/cutover-dev/cutover/pkg/errkind"
	"github.com/cutover-dev/cutover/pkg/logging"
	"github.com/cutover-dev/cutover/pkg/manifest"
)

// Received is one chunk as it came over the wire.
type Received struct {
	// ID is the id the sender claims.
	ID manifest.ChunkID
	// Data is the uncompressed content.
	Data []byte
	// WireBytes is how many bytes it took on the wire.
	WireBytes int64
	// Verified says the source has hashed Data and found it to be ID
	// (agent/peer does, to know which peer sent a bad chunk): the stage
	// does not hash it a second time. Every chunk is hashed once on this
	// agent before it is written, by the stage or by the source.
	Verified bool
}

// Source is where releases come from (the controller).
type Source interface {
	// GetManifest returns a release's canonical manifest bytes
	// (errkind.NotFound if the source does not know it).
	GetManifest(ctx context.Context, releaseID string) ([]byte, error)
	// FetchChunks asks for ids and calls fn with each batch received, in
	// order, and a function that releases the batch's memory: fn may keep
	// the data until it calls it, and calls it exactly once, even when it
	// fails. fn's error ends the fetch and is returned. suspect are ids
	// among ids that arrived corrupt before: the source checks its copy of
	// them first (errkind.DataLoss if it is corrupt). releaseID names the
	// release they belong to: the controller sends an agent only chunks of
	// its environment's releases.
	FetchChunks(ctx context.Context, releaseID string, ids, suspect []manifest.ChunkID, fn func(batch []Received, release func()) error) error
}

// Release names one application's release.
type Release struct {
	Application string
	ID          string
}

// Progress is what a stage command reports.
type Progress struct {
	// ReleaseBytes is the size of the releases to hold.
	ReleaseBytes int64
	// TransferredBytes is what was received over the wire for this command.
	TransferredBytes int64
	// ReusedBytes is the part of ReleaseBytes the agent already held, and so
	// did not fetch.
	ReusedBytes int64
	// ClonedBytes is the part of ReusedBytes cloned as whole files from
	// identical files of staged releases (see clone.go), not hashed again.
	ClonedBytes int64
}

// Defaults used when a Config field is zero.
const (
	DefaultFetchIDs    = 4096
	DefaultCommitBytes = 32 << 20
	DefaultRetryFor    = 30 * time.Second
	// MaxChunkFailures is how often a chunk may fail verification before the
	// stage command fails.
	MaxChunkFailures = 3
)

// Config configures a Stager.
type Config struct {
	// Store is the agent's store.
	Store *store.Store
	// Root is the agent's --root.
	Root string
	// Source is where manifests and chunks come from.
	Source Source
	// Log receives staging events.
	Log *slog.Logger
	// Registerer receives the stage metrics; nil: not registered.
	Registerer prometheus.Registerer
	// Clock returns the time; nil: time.Now.
	Clock func() time.Time
	// FetchIDs is how many chunk ids one FetchChunks asks for.
	FetchIDs int
	// CommitBytes is how much chunk data is written between two commits
	// (fsync of the files, then a store transaction recording them).
	CommitBytes int
	// RetryFor is how long a stage keeps retrying while the controller is
	// unavailable (default 30s); then the stage fails, keeping what it committed.
	RetryFor time.Duration
	// Rate caps how fast each stage writes, in bytes per second (the
	// agent's --stage-rate); a stage command's own cap lowers it. 0: none.
	Rate int64
	// Sleep waits d or until ctx ends (the rate cap waits with it); nil:
	// a timer. Tests pass one that advances their Clock.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Stager stages releases. Its methods are safe for concurrent use; work on
// the same release is serialized.
type Stager struct {
	cfg     Config
	metrics *metrics

	// decoded keeps the manifests decoded (manifests.go).
	decoded *manifests
	// live is what the stages under way have written (live.go).
	live *live

	mu    sync.Mutex
	locks map[string]*sync.Mutex
	// lowerFailed logs, once, that staging threads keep their priority.
	lowerFailed sync.Once
}

// New returns a Stager.
func New(cfg Config) (*Stager, error) {
	if cfg.Store == nil || cfg.Root == "" || cfg.Source == nil {
		return nil, errors.New("stage: Store, Root and Source are required")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.FetchIDs <= 0 {
		cfg.FetchIDs = DefaultFetchIDs
	}
	if cfg.CommitBytes <= 0 {
		cfg.CommitBytes = DefaultCommitBytes
	}
	if cfg.Sleep == nil {
		cfg.Sleep = sleepCtx
	}
	if cfg.RetryFor <= 0 {
		cfg.RetryFor = DefaultRetryFor
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	s := &Stager{cfg: cfg, metrics: m, decoded: &manifests{}, live: newLive(), locks: map[string]*sync.Mutex{}}
	if err := s.updateStagedBytes(); err != nil {
		return nil, err
	}
	return s, nil
}

// lock serializes work on one release.
func (s *Stager) lock(r Release) func() {
	s.mu.Lock()
	l, ok := s.locks[r.Application+"/"+r.ID]
	if !ok {
		l = &sync.Mutex{}
		s.locks[r.Application+"/"+r.ID] = l
	}
	s.mu.Unlock()
	l.Lock()
	return l.Unlock
}

// Stage fetches, verifies and puts releases in place, calling progress as
// the bytes come in (after they are durable). A release already staged
// costs nothing. It writes at most rate bytes per second, or Config.Rate
// if that is lower (0: no cap). On error, what was written is kept (a
// retry fetches only the rest) and nothing is put in place for the release
// that failed. Bytes cloned or copied from other staged releases' read-only
// files are not hashed again (clone.go, copylocal.go): call Reverify
// before activating a staged release.
func (s *Stager) Stage(ctx context.Context, releases []Release, rate int64, progress func(Progress)) (Progress, error) {
	if progress == nil {
		progress = func(Progress) {}
	}
	var p Progress
	for _, r := range releases {
		if err := layout.ValidRelease(r.Application, r.ID); err != nil {
			return p, fmt.Errorf("stage refused, nothing was staged: %w", err)
		}
	}
	manifests := make([]*manifest.Manifest, len(releases))
	for i, r := range releases {
		m, err := s.manifest(ctx, r)
		if err != nil {
			return p, err
		}
		manifests[i] = m
		p.ReleaseBytes += m.Size()
	}
	progress(p)
	lim := newLimiter(effectiveRate(rate, s.cfg.Rate), s.cfg.Clock, s.cfg.Sleep)
	err := s.lowered(func() error {
		for i, r := range releases {
			if err := s.stageOne(ctx, r, manifests[i], lim, &p, progress); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return p, err
	}
	return p, s.updateStagedBytes()
}

// lowered runs fn on a goroutine of its own whose OS thread runs at low
// priority (lowerThread), and waits for it.
func (s *Stager) lowered(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		if err := lowerThread(); err != nil {
			s.lowerFailed.Do(func() {
				s.cfg.Log.Warn("staging runs at normal priority: its threads could not be lowered", "error", err)
			})
		}
		errc <- fn()
	}()
	return <-errc
}

// manifest returns r's manifest, from the store or else from the source, and
// records it (state staging) so that its chunks count as referenced.
func (s *Stager) manifest(ctx context.Context, r Release) (*manifest.Manifest, error) {
	var rec *store.Release
	err := s.cfg.Store.View(func(tx *store.Tx) error {
		var err error
		rec, err = tx.Release(r.Application, r.ID)
		return err
	})
	if err != nil && !errors.Is(err, errkind.NotFound) {
		return nil, err
	}
	var b []byte
	if rec != nil {
		b = rec.Manifest
	} else if err = s.retry(ctx, func() error {
		var err error
		b, err = s.cfg.Source.GetManifest(ctx, r.ID)
		return err
	}); err != nil {
		return nil, fmt.Errorf("get manifest of release %s of %q: %w", r.ID, r.Application, err)
	}
	if got := manifest.ReleaseID(b); got != r.ID {
		return nil, fmt.Errorf("manifest of release %s of %q hashes to %s: refused, nothing was staged; the controller's copy may be corrupt: %w", r.ID, r.Application, got, errkind.DataLoss)
	}
	m, err := s.decoded.decode(b) // validates paths and symlinks, as the kernel will follow them
	if err != nil {
		return nil, fmt.Errorf("release %s of %q: refused, nothing was staged: %w", r.ID, r.Application, err)
	}
	if m.Application != r.Application {
		return nil, fmt.Errorf("release %s belongs to %q, not %q: nothing was staged: %w", r.ID, m.Application, r.Application, errkind.InvalidArgument)
	}
	if rec == nil {
		err = s.cfg.Store.Update(func(tx *store.Tx) error {
			if _, err := tx.ReleaseRecord(r.Application, r.ID); err == nil {
				return nil // recorded meanwhile
			}
			return tx.PutRelease(&store.Release{Application: r.Application, ID: r.ID, Manifest: b,
				State: store.ReleaseStaging, Size: m.Size(), UpdateTime: s.cfg.Clock()})
		})
		if err != nil {
			return nil, fmt.Errorf("record release %s of %q: %w", r.ID, r.Application, err)
		}
	}
	return m, nil
}

func (s *Stager) stageOne(ctx context.Context, r Release, m *manifest.Manifest, lim *limiter, p *Progress, progress func(Progress)) error {
	defer s.lock(r)()
	log := s.cfg.Log.With(logging.KeyApplication, r.Application, logging.KeyRelease, r.ID)
	staged, err := s.isStaged(r)
	if err != nil || staged {
		if staged {
			p.ReusedBytes += m.Size()
		}
		return err
	}
	if err := s.recordAgain(r, m); err != nil {
		return err
	}
	start := s.cfg.Clock()
	s.live.begin(r.ID)
	defer s.live.end(r.ID)                                             // after markStaged: until then, what it wrote is served from the staging files
	if err := s.build(ctx, r, m, lim, true, p, progress); err != nil { // arm verifies it all (Reverify)
		return err
	}
	if err := s.markStaged(r); err != nil {
		return err
	}
	log.Info("release staged", "bytes", m.Size(), "files", len(m.Files), "took", s.cfg.Clock().Sub(start))
	return nil
}

// recordAgain records r as staging again if a drop (of a deployment that
// failed with the same release) deleted its record between loadManifest,
// which recorded it without the release's lock, and this stage, which holds
// it now. Call with r's lock held: a drop takes it too, so a record seen
// here stays until the stage is done. Only a missing record costs a
// commit (a bbolt commit with nothing written still fdatasyncs twice).
func (s *Stager) recordAgain(r Release, m *manifest.Manifest) error {
	var recorded bool
	if err := s.cfg.Store.View(func(tx *store.Tx) error {
		_, err := tx.ReleaseRecord(r.Application, r.ID)
		recorded = err == nil
		return nil
	}); err != nil || recorded {
		return err
	}
	err := s.cfg.Store.Update(func(tx *store.Tx) error {
		if _, err := tx.ReleaseRecord(r.Application, r.ID); !errors.Is(err, errkind.NotFound) {
			return err // recorded, or a real error
		}
		b := m.Encode()
		if manifest.ReleaseID(b) != r.ID {
			return fmt.Errorf("the manifest, encoded again, hashes to %s: %w", manifest.ReleaseID(b), errkind.DataLoss)
		}
		return tx.PutRelease(&store.Release{Application: r.Application, ID: r.ID, Manifest: b,
			State: store.ReleaseStaging, Size: m.Size(), UpdateTime: s.cfg.Clock()})
	})
	if err != nil {
		return fmt.Errorf("record release %s of %q again after a drop: %w", r.ID, r.Application, err)
	}
	return nil
}

// markStaged records r as staged, and forgets its staging progress.
func (s *Stager) markStaged(r Release) error {
	err := s.cfg.Store.Update(func(tx *store.Tx) error {
		// The record only: its manifest, megabytes for a large release,
		// is not written again.
		if err := tx.SetReleaseState(r.Application, r.ID, store.ReleaseStaged, s.cfg.Clock()); err != nil {
			return err
		}
		return tx.DeleteProgress(r.Application, r.ID)
	})
	if err != nil {
		return fmt.Errorf("record release %s of %q as staged: %w", r.ID, r.Application, err)
	}
	return nil
}

// onDisk is what the agent holds of a release.
type onDisk struct {
	// Staged says the release is recorded as staged.
	Staged bool
	// Running says `current` points to it: it is never checked nor
	// rewritten under the app's feet.
	Running bool
	// Manifest is its manifest, when staged.
	Manifest *manifest.Manifest
	// Damage is how its directory differs from Manifest (Verify's error);
	// nil when intact, running or not staged.
	Damage error
}

// inspect reads r's record and, when it is staged and does not run, checks
// its directory against its manifest (every file hashed). A release
// without a record is not staged.
func (s *Stager) inspect(r Release) (onDisk, error) {
	var d onDisk
	err := s.cfg.Store.View(func(tx *store.Tx) error {
		rec, err := tx.ReleaseRecord(r.Application, r.ID)
		if err != nil || rec.State != store.ReleaseStaged {
			return err
		}
		d.Staged = true
		d.Manifest, err = s.decoded.decode(tx.ManifestBytes(r.Application, r.ID)) // in place, not copied
		return err
	})
	if errors.Is(err, errkind.NotFound) || (err == nil && !d.Staged) {
		return onDisk{}, nil
	}
	if err != nil {
		return onDisk{}, err
	}
	if cur, _ := layout.Current(s.cfg.Root, r.Application); cur == r.ID {
		d.Running = true
		return d, nil
	}
	d.Damage = Verify(s.releaseDir(r), d.Manifest)
	return d, nil
}

// isStaged reports whether r is recorded as staged and its directory is in
// place and matches the manifest (or runs).
func (s *Stager) isStaged(r Release) (bool, error) {
	d, err := s.inspect(r)
	if err != nil {
		return false, err
	}
	if d.Damage != nil {
		s.cfg.Log.Warn("staged release no longer matches its manifest; staging it again", logging.KeyApplication, r.Application, logging.KeyRelease, r.ID, "error", d.Damage)
	}
	return d.Staged && d.Damage == nil, nil
}

// Staged returns the staged releases per application.
func (s *Stager) Staged() (map[string][]string, error) {
	out := map[string][]string{}
	err := s.cfg.Store.View(func(tx *store.Tx) error {
		rs, err := tx.ReleaseRecords()
		for _, r := range rs {
			if r.State == store.ReleaseStaged {
				out[r.Application] = append(out[r.Application], r.ID)
			}
		}
		return err
	})
	return out, err
}

func (s *Stager) updateStagedBytes() error {
	var n int64
	err := s.cfg.Store.View(func(tx *store.Tx) error {
		rs, err := tx.ReleaseRecords()
		for _, r := range rs {
			if r.State == store.ReleaseStaged {
				n += r.Size
			}
		}
		return err
	})
	s.metrics.stagedBytes.Set(float64(n))
	return err
}
