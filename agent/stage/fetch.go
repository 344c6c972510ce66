package stage

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/cutover-dev/cutover/agent/store"
	"github.com/cutover-dev/cutover/pkg/errkind"
	"github.com/cutover-dev/cutover/pkg/manifest"
)

// missing returns the ids of m that the store lacks.
func (s *Stager) missing(m *manifest.Manifest) ([]manifest.ChunkID, error) {
	return s.lacking(m.ChunkIDs())
}

// chunkBytes returns the total size of the chunks ids of m.
func chunkBytes(m *manifest.Manifest, ids []manifest.ChunkID) int64 {
	size := make(map[manifest.ChunkID]int64)
	for i := range m.Files {
		for _, c := range m.Files[i].Chunks {
			size[c.ID] = c.Size
		}
	}
	var n int64
	for _, id := range ids {
		n += size[id]
	}
	return n
}

// lacking returns the ids the store does not hold.
func (s *Stager) lacking(ids []manifest.ChunkID) ([]manifest.ChunkID, error) {
	var out []manifest.ChunkID
	err := s.cfg.Store.View(func(tx *store.Tx) error {
		for _, id := range ids {
			if !tx.HasChunk(id) {
				out = append(out, id)
			}
		}
		return nil
	})
	return out, err
}

// retry calls fn until it succeeds, fails with an error that is not
// errkind.Unavailable (the controller is away, restarting), or RetryFor has
// passed since the first failure; it waits 100 ms, doubling to 2 s, between
// attempts.
func (s *Stager) retry(ctx context.Context, fn func() error) error {
	var deadline time.Time
	wait := 100 * time.Millisecond
	for {
		err := fn()
		if err == nil || !errors.Is(err, errkind.Unavailable) {
			return err
		}
		if deadline.IsZero() {
			deadline = time.Now().Add(s.cfg.RetryFor)
		}
		if time.Now().Add(wait).After(deadline) {
			return err
		}
		s.cfg.Log.Debug("controller unavailable; retrying", "error", err, "in", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// fetch brings every chunk of m that the store lacks, verifying and committing
// them in batches, and tells arr (if not nil) what it committed. A
// chunk that is refused (bad hash) or not sent is asked for again; after
// MaxChunkFailures failures the fetch fails.
func (s *Stager) fetch(ctx context.Context, r Release, m *manifest.Manifest, p *Progress, progress func(Progress), arr *arrivals) error {
	want, err := s.missing(m)
	if err != nil {
		return err
	}
	p.ReusedBytes += m.Size() - chunkBytes(m, want)
	failures := map[manifest.ChunkID]int{}
	for len(want) > 0 {
		var still []manifest.ChunkID
		for start := 0; start < len(want); start += s.cfg.FetchIDs {
			batch := want[start:min(start+s.cfg.FetchIDs, len(want))]
			var left []manifest.ChunkID
			err := s.retry(ctx, func() error {
				var err error
				if batch, err = s.lacking(batch); err != nil || len(batch) == 0 {
					return err
				}
				left, err = s.fetchBatch(ctx, batch, p, progress, arr)
				return err
			})
			if err != nil {
				return fmt.Errorf("fetch chunks of release %s of %q: %w (nothing was materialized; the chunks committed so far are kept and a retry fetches only the rest)", r.ID, r.Application, err)
			}
			still = append(still, left...)
		}
		var failed []string
		for _, id := range still {
			if failures[id]++; failures[id] >= MaxChunkFailures {
				failed = append(failed, id.String())
			}
		}
		if len(failed) > 0 {
			sort.Strings(failed)
			return fmt.Errorf("release %s of %q: chunk(s) %s failed verification or were not sent %d times; nothing was materialized and the running release is untouched; check the controller's store, then stage again: %w",
				r.ID, r.Application, strings.Join(failed, ", "), MaxChunkFailures, errkind.DataLoss)
		}
		want = still
	}
	return nil
}

// fetchBatch asks for ids, verifies and commits the chunks as they come,
// and returns the ids that did not arrive intact. Receiving, verifying and
// committing run at the same time, each in its own goroutine, with at most
// a few messages and two commit batches in memory. When the stream breaks,
// what was received before the break is still verified and committed.
func (s *Stager) fetchBatch(ctx context.Context, ids []manifest.ChunkID, p *Progress, progress func(Progress), arr *arrivals) ([]manifest.ChunkID, error) {
	pending := make(map[manifest.ChunkID]bool, len(ids))
	for _, id := range ids {
		pending[id] = true
	}
	type batch struct {
		chunks []Received
		wire   int64
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	received := make(chan []Received, 2)
	verified := make(chan batch, 1)
	var recvErr error
	go func() {
		defer close(received)
		recvErr = s.cfg.Source.FetchChunks(rctx, ids, func(b []Received) error {
			select {
			case received <- b:
				return nil
			case <-rctx.Done():
				return rctx.Err()
			}
		})
	}()
	go func() {
		defer close(verified)
		var cur batch
		curBytes := 0
		for b := range received {
			for _, c := range b {
				cur.wire += c.WireBytes
				if !pending[c.ID] {
					continue // not asked for, or already received in this batch
				}
				if manifest.HashChunk(c.Data) != c.ID {
					s.metrics.chunkBadHashes.Inc()
					s.cfg.Log.Warn("chunk refused: its SHA-256 does not match its id; it will be fetched again", "chunk", c.ID.String())
					continue
				}
				delete(pending, c.ID)
				cur.chunks = append(cur.chunks, c)
				if curBytes += len(c.Data); curBytes >= s.cfg.CommitBytes {
					verified <- cur
					cur, curBytes = batch{}, 0
				}
			}
		}
		if cur.wire > 0 {
			verified <- cur
		}
	}()
	var commitErr error
	for b := range verified { // drained to the end, so that the goroutines above end
		if commitErr != nil {
			continue
		}
		if commitErr = s.commit(b.chunks); commitErr != nil {
			cancel()
			continue
		}
		arr.committed(b.chunks)
		p.TransferredBytes += b.wire
		s.metrics.wireBytes.Add(float64(b.wire))
		progress(*p)
	}
	if commitErr != nil {
		return nil, commitErr
	}
	if recvErr != nil {
		return nil, recvErr
	}
	var left []manifest.ChunkID
	for _, id := range ids {
		if pending[id] {
			left = append(left, id)
			delete(pending, id) // duplicate ids in ids: report once
		}
	}
	return left, nil
}

// commit stores verified chunks in one durable transaction.
func (s *Stager) commit(chunks []Received) error {
	if len(chunks) == 0 {
		return nil
	}
	err := s.cfg.Store.Update(func(tx *store.Tx) error {
		for _, c := range chunks {
			if err := tx.PutChunk(c.ID, c.Data); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("commit %d chunks: %w", len(chunks), err)
	}
	s.metrics.chunksFetched.Add(float64(len(chunks)))
	for _, c := range chunks {
		s.metrics.fetchedBytes.Add(float64(len(c.Data)))
	}
	return nil
}
