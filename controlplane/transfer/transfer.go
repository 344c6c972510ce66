// Package transfer serves release chunks to agents. It reads each chunk from
// the controller's store once for all the agents that ask for it at about
// the same time (a cache of recently sent chunks, bounded in bytes), so that
// staging to N agents at once costs one store read per chunk, not N; it
// compresses a chunk with zstd once, and only when that pays; it reads the
// next chunks of a transfer while the current ones are sent; it caps what
// all its transfers send together (Config.MaxEgress); and it counts the
// bytes sent to agents and the bytes they did not need, per environment.
package transfer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/klauspost/compress/zstd"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/pkg/errkind"
	"github.com/cutover-dev/cutover/pkg/manifest"
)

// Defaults used when a Config field is zero.
const (
	// DefaultCacheBytes bounds the chunk cache: enough for every agent of a
	// fleet that stages at once to find what the first one read.
	DefaultCacheBytes = 128 << 20
	// DefaultBatchBytes is about how much chunk data one batch carries.
	DefaultBatchBytes = 1 << 20
)

// Compression "pays" when the compressed chunk is at most payRatio of the
// original. A sample of sampleBytes is tried first, so that incompressible
// chunks (already compressed assets, random data) cost little.
const (
	payRatio    = 0.9
	sampleBytes = 4 << 10
)

// Config configures a Sender.
type Config struct {
	// Store holds the chunks.
	Store model.Store
	// Log receives transfer events; nil: discarded.
	Log *slog.Logger
	// Registerer receives the transfer metrics; nil: not registered.
	Registerer prometheus.Registerer
	// CacheBytes bounds the cache of chunks read from the store.
	CacheBytes int64
	// BatchBytes is about how much (wire) data one batch carries.
	BatchBytes int
	// MaxEgress caps the chunk data sent by all transfers together, to
	// agents and to follower controllers, in bytes per second (a token
	// bucket whose burst is one batch); 0: no cap.
	MaxEgress int64
}

// Chunk is a chunk ready to send. Data is shared between senders: nobody may
// modify it.
type Chunk struct {
	ID manifest.ChunkID
	// Data is the content, zstd-compressed if Compressed.
	Data       []byte
	Compressed bool
}

// Sender hands out chunks in batches.
type Sender struct {
	cfg     Config
	metrics *metrics
	enc     *zstd.Encoder
	egress  *egress // nil: no cap

	mu     sync.Mutex
	cache  map[manifest.ChunkID]*entry
	order  []manifest.ChunkID // insertion order, for eviction
	bytes  int64
	active int // Sends running; the cache is emptied when none is
}

// entry is a cached chunk; ready is closed once data (or err) is set.
type entry struct {
	ready chan struct{}
	chunk Chunk
	err   error
}

// New returns a Sender.
func New(cfg Config) (*Sender, error) {
	if cfg.Store == nil {
		return nil, errors.New("transfer: Store is required")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.CacheBytes <= 0 {
		cfg.CacheBytes = DefaultCacheBytes
	}
	if cfg.BatchBytes <= 0 {
		cfg.BatchBytes = DefaultBatchBytes
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest))
	if err != nil {
		return nil, fmt.Errorf("transfer: zstd encoder: %w", err)
	}
	m.egressLimit.Set(float64(max(cfg.MaxEgress, 0)))
	return &Sender{cfg: cfg, metrics: m, enc: enc, egress: newEgress(cfg.MaxEgress, cfg.BatchBytes), cache: map[manifest.ChunkID]*entry{}}, nil
}

// Send hands the chunks ids, in order, to send in batches of about
// BatchBytes, and counts what it sent for environment env. suspect are ids
// that reached the agent corrupt before: their stored copy is checked
// first (checkSuspects). Each batch waits for its bytes under
// Config.MaxEgress before it is sent. Errors: errkind.NotFound for an unknown chunk,
// errkind.DataLoss for a suspect found corrupt, send's and ctx's.
//
// The chunks are looked up a window of ids at a time (the misses of a
// window are read in one store transaction), by a goroutine that reads
// ahead of send: while one window's batches are sent, the next is read and
// compressed, and at most readAhead windows wait ready beyond the one being
// sent.
func (s *Sender) Send(ctx context.Context, env string, ids, suspect []manifest.ChunkID, send func([]Chunk) error) error {
	if err := s.checkSuspects(suspect); err != nil {
		return err
	}
	s.mu.Lock()
	s.active++
	s.mu.Unlock()
	defer s.done()
	ctx, cancel := context.WithCancel(ctx)
	windows := make(chan window, readAhead-1)
	var reader sync.WaitGroup
	reader.Go(func() { s.readWindows(ctx, ids, windows) })
	defer reader.Wait() // before done: the reader adds to the cache
	defer cancel()
	var batch []Chunk
	size := 0
	for w := range windows {
		if w.err != nil {
			return w.err
		}
		for _, c := range w.chunks {
			if size > 0 && size+len(c.Data) > s.cfg.BatchBytes {
				if err := ctx.Err(); err != nil {
					return err
				}
				if err := s.flush(ctx, env, batch, size, send); err != nil {
					return err
				}
				batch, size = nil, 0
			}
			batch = append(batch, c)
			size += len(c.Data)
		}
	}
	if err := ctx.Err(); err != nil {
		return err // the reader stopped early
	}
	if len(batch) > 0 {
		return s.flush(ctx, env, batch, size, send)
	}
	return nil
}

// Send's read-ahead: windowIDs ids are looked up together, and a Send's
// reader is at most readAhead windows ahead of the one being sent.
const (
	windowIDs = 64
	readAhead = 2
)

// window is the chunks of one window of ids, or the error that ended them.
type window struct {
	chunks []Chunk
	err    error
}

// readWindows gets ids a window at a time and hands each to out, in order;
// it stops after an error or when ctx ends, and closes out.
func (s *Sender) readWindows(ctx context.Context, ids []manifest.ChunkID, out chan<- window) {
	defer close(out)
	for start := 0; start < len(ids) && ctx.Err() == nil; start += windowIDs {
		chunks, err := s.get(ctx, ids[start:min(start+windowIDs, len(ids))])
		select {
		case out <- window{chunks: chunks, err: err}:
		case <-ctx.Done():
			return
		}
		if err != nil {
			return
		}
	}
}

// done ends a Send; the last one running empties the cache, so that the
// controller holds no chunk data between transfers.
func (s *Sender) done() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.active--; s.active > 0 {
		return
	}
	for id, e := range s.cache {
		select {
		case <-e.ready:
			delete(s.cache, id)
		default: // still loading for a Send that was cancelled: left to load
		}
	}
	s.order, s.bytes = nil, 0
}

// flush sends a batch of size bytes once the egress cap allows it, and
// counts it.
func (s *Sender) flush(ctx context.Context, env string, batch []Chunk, size int, send func([]Chunk) error) error {
	waited, err := s.egress.wait(ctx, size)
	s.metrics.egressWait.Add(waited.Seconds())
	if err != nil {
		return err
	}
	if err := send(batch); err != nil {
		return err
	}
	s.metrics.sent.WithLabelValues(env).Add(float64(size))
	return nil
}

// Saved counts n release bytes that an agent of env did not need to fetch.
// n = 0 still creates env's series (at 0), so that it exists once the
// environment has staged anything.
func (s *Sender) Saved(env string, n int64) {
	c := s.metrics.saved.WithLabelValues(env)
	if n > 0 {
		c.Add(float64(n))
	}
}

// get returns the chunks ids, from the cache or else from the store (one
// transaction for all the misses).
func (s *Sender) get(ctx context.Context, ids []manifest.ChunkID) ([]Chunk, error) {
	entries := make([]*entry, len(ids))
	var mine []*entry
	var mineIDs []manifest.ChunkID
	s.mu.Lock()
	for i, id := range ids {
		e, ok := s.cache[id]
		if !ok {
			e = &entry{ready: make(chan struct{})}
			s.cache[id] = e
			s.order = append(s.order, id)
			mine, mineIDs = append(mine, e), append(mineIDs, id)
		}
		entries[i] = e
	}
	s.mu.Unlock()
	if len(mine) > 0 {
		s.load(mineIDs, mine)
	}
	out := make([]Chunk, len(ids))
	for i, e := range entries {
		select {
		case <-e.ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if e.err != nil {
			return nil, e.err
		}
		out[i] = e.chunk
	}
	return out, nil
}

// load reads ids from the store into their entries, compressing what pays,
// then evicts old entries beyond CacheBytes. A failed read is not cached.
func (s *Sender) load(ids []manifest.ChunkID, entries []*entry) {
	raw := make([][]byte, len(ids))
	errs := make([]error, len(ids))
	if err := s.cfg.Store.View(func(tx model.Tx) error {
		for i, id := range ids {
			if raw[i], errs[i] = tx.Chunk(id); errors.Is(errs[i], errkind.NotFound) {
				errs[i] = fmt.Errorf("chunk %s is not in the controller's store (deleted as corrupt, or collected since the build); prepare the deployment again (its build stores it again): %w", id, errkind.NotFound)
			}
		}
		return nil
	}); err != nil {
		for i := range errs {
			errs[i] = err
		}
	}
	s.metrics.storeReads.Add(float64(len(ids)))
	var added int64
	for i, e := range entries {
		if errs[i] != nil {
			e.err = errs[i]
		} else {
			e.chunk = s.prepare(ids[i], raw[i])
			added += int64(len(e.chunk.Data))
		}
	}
	s.mu.Lock()
	for i, e := range entries {
		if e.err != nil {
			delete(s.cache, ids[i])
		}
		close(e.ready)
	}
	s.bytes += added
	s.evict()
	s.mu.Unlock()
}

// evict drops the oldest loaded entries while the cache holds more than
// CacheBytes. Call with s.mu held.
func (s *Sender) evict() {
	for s.bytes > s.cfg.CacheBytes && len(s.order) > 0 {
		id := s.order[0]
		e, ok := s.cache[id]
		if ok {
			select {
			case <-e.ready:
			default:
				return // still loading: evict later
			}
			delete(s.cache, id)
			s.bytes -= int64(len(e.chunk.Data))
		}
		s.order = s.order[1:]
	}
	if cap(s.order) > 4*len(s.order)+1024 {
		s.order = append([]manifest.ChunkID(nil), s.order...)
	}
}

// prepare compresses data when that pays.
func (s *Sender) prepare(id manifest.ChunkID, data []byte) Chunk {
	c := Chunk{ID: id, Data: data}
	if len(data) < 2*sampleBytes {
		return c
	}
	if sample := s.enc.EncodeAll(data[:sampleBytes], nil); float64(len(sample)) > payRatio*sampleBytes {
		return c
	}
	if z := s.enc.EncodeAll(data, nil); float64(len(z)) <= payRatio*float64(len(data)) {
		c.Data, c.Compressed = z, true
	}
	return c
}
