package stage

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/cutover-dev/cutover/pkg/errkind"
	"github.com/cutover-dev/cutover/pkg/manifest"
)

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

// fetchInto fetches every chunk f still needs and writes it. A chunk that
// is refused (bad hash) or not sent is asked for again; after
// MaxChunkFailures failures the fetch fails.
func (s *Stager) fetchInto(ctx context.Context, r Release, f *fill) error {
	want, _ := f.missing()
	failures := map[manifest.ChunkID]int{}
	for len(want) > 0 {
		for start := 0; start < len(want); start += s.cfg.FetchIDs {
			batch := want[start:min(start+s.cfg.FetchIDs, len(want))]
			err := s.retry(ctx, func() error {
				batch = f.needed(batch)
				if len(batch) == 0 {
					return nil
				}
				var suspect []manifest.ChunkID
				for _, id := range batch {
					if failures[id] > 0 {
						suspect = append(suspect, id)
					}
				}
				return s.fetchBatch(ctx, r.ID, batch, suspect, f)
			})
			if err != nil {
				return fmt.Errorf("fetch chunks of release %s of %q: %w (nothing was put in place; what was written so far is kept and a retry fetches only the rest)", r.ID, r.Application, err)
			}
		}
		var failed []string
		want = f.needed(want)
		for _, id := range want {
			if failures[id]++; failures[id] >= MaxChunkFailures {
				failed = append(failed, id.String())
			}
		}
		if len(failed) > 0 {
			sort.Strings(failed)
			return fmt.Errorf("release %s of %q: chunk(s) %s failed verification or were not sent %d times; nothing was put in place and the running release is untouched; check the controller's store, then stage again: %w",
				r.ID, r.Application, strings.Join(failed, ", "), MaxChunkFailures, errkind.DataLoss)
		}
	}
	return nil
}

// fetchBatch asks for ids, and verifies and writes the chunks as they
// come: one goroutine receives and verifies (SHA-256) each message, this
// one writes the chunks that verified, and f commits them in batches on a
// third, so that hashing, writing and fsync use the machine at the same
// time. When the stream breaks, what was received before the break is
// still written.
func (s *Stager) fetchBatch(ctx context.Context, releaseID string, ids, suspect []manifest.ChunkID, f *fill) error {
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type message struct {
		good    []Received // verified
		wire    int64      // bytes on the wire, good or not
		release func()     // of the received batch's memory
	}
	received := make(chan message, 2)
	var recvErr error
	go func() {
		defer close(received)
		_ = lowerThread() // hashes at low priority; the writer's failure is logged (Stager.lowered)
		recvErr = s.cfg.Source.FetchChunks(rctx, releaseID, ids, suspect, func(b []Received, release func()) error {
			msg := message{good: b[:0], release: release}
			for _, c := range b {
				msg.wire += c.WireBytes
				if !c.Verified && manifest.HashChunk(c.Data) != c.ID {
					s.metrics.chunkBadHashes.Inc()
					s.cfg.Log.Warn("chunk refused: its SHA-256 does not match its id; it will be fetched again", "chunk", c.ID.String())
					continue
				}
				msg.good = append(msg.good, c)
			}
			select {
			case received <- msg:
				return nil
			case <-rctx.Done():
				release()
				return rctx.Err()
			}
		})
	}()
	var writeErr error
	for msg := range received { // drained to the end, so that the goroutine above ends
		if writeErr == nil {
			writeErr = s.writeMessage(f, msg.good, msg.wire)
			if writeErr != nil {
				cancel()
			}
		}
		msg.release() // written (to the page cache): the buffer can be reused
	}
	if writeErr != nil {
		return writeErr
	}
	return recvErr
}

// writeMessage writes the verified chunks of one received message that f
// still needs, and counts its wire bytes.
func (s *Stager) writeMessage(f *fill, good []Received, wire int64) error {
	f.received(wire)
	for _, c := range good {
		if !f.needs(c.ID) {
			continue // not asked for, or already written
		}
		if err := f.write(c.ID, c.Data, true); err != nil {
			return err
		}
	}
	s.live.notify()
	return nil
}
