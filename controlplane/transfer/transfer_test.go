package transfer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/cutover-dev/cutover/controlplane/store"
	"github.com/cutover-dev/cutover/pkg/errkind"
	"github.com/cutover-dev/cutover/pkg/manifest"
	"github.com/cutover-dev/cutover/pkg/poll"
)

func randomData(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// setup stores n random chunks of size bytes and returns a Sender over them.
func setup(t testing.TB, n, size int, cfg Config) (*Sender, []manifest.Chunk, *prometheus.Registry) {
	t.Helper()
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	rng := rand.New(rand.NewPCG(1, 2))
	var chunks []manifest.Chunk
	for range n {
		d := randomData(rng, size)
		chunks = append(chunks, manifest.Chunk{ID: manifest.HashChunk(d), Data: d})
	}
	if err := st.PutChunks(chunks); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	cfg.Store, cfg.Registerer = st, reg
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s, chunks, reg
}

func ids(chunks []manifest.Chunk) []manifest.ChunkID {
	out := make([]manifest.ChunkID, len(chunks))
	for i, c := range chunks {
		out[i] = c.ID
	}
	return out
}

func TestSendBatchesInOrderAndCounts(t *testing.T) {
	s, chunks, reg := setup(t, 10, 300<<10, Config{})
	var got []Chunk
	var batches []int
	err := s.Send(context.Background(), "prod", ids(chunks), nil, func(b []Chunk) error {
		batches = append(batches, len(b))
		got = append(got, b...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// 300 KiB chunks, at most 1 MiB per batch: 3 per batch.
	if want := []int{3, 3, 3, 1}; len(batches) != len(want) || batches[0] != 3 || batches[3] != 1 {
		t.Errorf("batches = %v, want %v", batches, want)
	}
	for i, c := range got {
		if c.ID != chunks[i].ID || c.Compressed || !bytes.Equal(c.Data, chunks[i].Data) {
			t.Errorf("chunk %d differs", i)
		}
	}
	if v := value(s.metrics.sent.WithLabelValues("prod")); v != 10*300<<10 {
		t.Errorf("cutover_transfer_bytes_total = %v", v)
	}
	s.Saved("prod", 42)
	s.Saved("prod", 0)
	if v := value(s.metrics.saved.WithLabelValues("prod")); v != 42 {
		t.Errorf("cutover_transfer_saved_bytes_total = %v", v)
	}
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	registered := map[string]bool{}
	for _, f := range fams {
		registered[f.GetName()] = true
	}
	for _, name := range []string{"cutover_transfer_bytes_total", "cutover_transfer_saved_bytes_total", "cutover_transfer_chunk_store_reads_total"} {
		if !registered[name] {
			t.Errorf("%s is not registered", name)
		}
	}
}

func TestConcurrentSendersReadTheStoreOnce(t *testing.T) {
	s, chunks, _ := setup(t, 40, 64<<10, Config{})
	const agents = 10
	var started sync.WaitGroup
	started.Add(agents)
	var wg sync.WaitGroup
	for range agents {
		wg.Go(func() {
			first := true
			err := s.Send(context.Background(), "prod", ids(chunks), nil, func([]Chunk) error {
				if first { // every Send runs before any ends: they share the cache
					first = false
					started.Done()
					started.Wait()
				}
				return nil
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if v := value(s.metrics.storeReads); v != 40 {
		t.Errorf("store reads = %v for %d agents × 40 chunks, want 40", v, agents)
	}
}

func TestCacheIsBoundedAndEmptiedAfterwards(t *testing.T) {
	const limit = 64 << 10
	s, chunks, _ := setup(t, 70, 4<<10, Config{CacheBytes: limit})
	twice := append(ids(chunks), ids(chunks)...)
	err := s.Send(context.Background(), "prod", twice, nil, func([]Chunk) error {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.bytes > limit {
			t.Errorf("cache holds %d bytes, bound %d", s.bytes, limit)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if v := value(s.metrics.storeReads); v <= 70 {
		t.Errorf("store reads = %v: a 64 KiB cache cannot keep 70 chunks of 4 KiB for the second pass", v)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.bytes != 0 || len(s.cache) != 0 {
		t.Errorf("after the last Send the cache holds %d chunks, %d bytes", len(s.cache), s.bytes)
	}
}

func TestSendReadsAheadWhileSending(t *testing.T) {
	// One chunk per batch; 5 windows of ids.
	s, chunks, _ := setup(t, 5*windowIDs, 1024, Config{BatchBytes: 1024})
	const ahead = (1 + readAhead) * windowIDs // the window being sent and those ready
	n := 0
	err := s.Send(context.Background(), "prod", ids(chunks), nil, func([]Chunk) error {
		n++
		if n == 1 {
			// The first batch is not done before the next windows are read.
			if err := poll.True(context.Background(), 10*time.Second, "the next windows read", func() bool { return value(s.metrics.storeReads) >= ahead }); err != nil {
				return fmt.Errorf("while the first window is sent, %v chunks were read, want %d: no read-ahead (%w)", value(s.metrics.storeReads), ahead, err)
			}
		}
		// Batch n goes out when chunk n+1 arrives: batches 1 to
		// windowIDs-1 while the first window is the one being sent (the
		// last batch of the first window goes out once the second window
		// is taken, when the reader may be a window further).
		if n < windowIDs {
			if v := value(s.metrics.storeReads); v > ahead {
				t.Errorf("batch %d of the first window: %v chunks read, more than %d (read-ahead unbounded)", n, v, ahead)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != len(chunks) {
		t.Errorf("%d batches, want %d", n, len(chunks))
	}
}

func TestSendStopsReadingWhenSendFails(t *testing.T) {
	s, chunks, _ := setup(t, 5*windowIDs, 1024, Config{BatchBytes: 1024})
	boom := errors.New("boom")
	err := s.Send(context.Background(), "prod", ids(chunks), nil, func([]Chunk) error { return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("Send = %v, want boom", err)
	}
	// Send waited for its reader, which stopped within the read-ahead, and
	// being the last Send it emptied the cache.
	if v := value(s.metrics.storeReads); v > (2+readAhead)*windowIDs {
		t.Errorf("%v chunks read after the first batch failed", v)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.cache) != 0 || s.bytes != 0 {
		t.Errorf("after Send the cache holds %d chunks, %d bytes", len(s.cache), s.bytes)
	}
}

func TestSendCancelled(t *testing.T) {
	s, chunks, _ := setup(t, 3*windowIDs, 1024, Config{BatchBytes: 1024})
	ctx, cancel := context.WithCancel(context.Background())
	batches := 0
	err := s.Send(ctx, "prod", ids(chunks), nil, func([]Chunk) error {
		if batches++; batches == 1 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Send = %v after %d batches, want context.Canceled", err, batches)
	}
	if batches != 1 {
		t.Errorf("%d batches sent after the cancel", batches-1)
	}
}

func TestCompressesOnlyWhenItPays(t *testing.T) {
	s, _, _ := setup(t, 0, 0, Config{})
	dec, _ := zstd.NewReader(nil)
	rng := rand.New(rand.NewPCG(3, 4))
	text := bytes.Repeat([]byte("the same line of a log file, again and again\n"), 2000)
	tests := []struct {
		name string
		data []byte
		want bool
	}{
		{"text", text, true},
		{"random", randomData(rng, 64<<10), false},
		{"small", []byte("tiny"), false},
		{"random tail", append(bytes.Repeat([]byte{0}, 8<<10), randomData(rng, 200<<10)...), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := s.prepare(manifest.HashChunk(tt.data), tt.data)
			if c.Compressed != tt.want {
				t.Fatalf("compressed = %v, want %v", c.Compressed, tt.want)
			}
			got := c.Data
			if c.Compressed {
				var err error
				if got, err = dec.DecodeAll(c.Data, nil); err != nil {
					t.Fatal(err)
				}
			}
			if !bytes.Equal(got, tt.data) {
				t.Error("data differs")
			}
		})
	}
}

func TestUnknownChunkIsNotFound(t *testing.T) {
	s, chunks, _ := setup(t, 2, 1024, Config{})
	err := s.Send(context.Background(), "prod", []manifest.ChunkID{chunks[0].ID, {9}}, nil, func([]Chunk) error { return nil })
	if !errors.Is(err, errkind.NotFound) {
		t.Fatalf("Send = %v, want NotFound", err)
	}
	// Not cached: a later request reads it again.
	s.mu.Lock()
	_, cached := s.cache[manifest.ChunkID{9}]
	s.mu.Unlock()
	if cached {
		t.Error("a failed read stays in the cache")
	}
}

// value reads a counter.
func value(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}
