package stage

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/cutover-dev/cutover/agent/store"
	"github.com/cutover-dev/cutover/pkg/appspec"
	"github.com/cutover-dev/cutover/pkg/errkind"
	"github.com/cutover-dev/cutover/pkg/manifest"
)

// memSource is a Source in memory; onFetch runs on the goroutine that
// receives the chunks, before each batch.
type memSource struct {
	mu        sync.Mutex
	manifests map[string][]byte
	chunks    map[manifest.ChunkID][]byte
	onFetch   func()
}

func (m *memSource) PutChunks(cs []manifest.Chunk) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range cs {
		m.chunks[c.ID] = append([]byte(nil), c.Data...)
	}
	return nil
}

func (m *memSource) GetManifest(_ context.Context, id string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if b, ok := m.manifests[id]; ok {
		return b, nil
	}
	return nil, errkind.NotFound
}

func (m *memSource) FetchChunks(_ context.Context, _ string, ids, _ []manifest.ChunkID, fn func([]Received, func()) error) error {
	for _, id := range ids {
		if m.onFetch != nil {
			m.onFetch()
		}
		m.mu.Lock()
		data := m.chunks[id]
		m.mu.Unlock()
		if err := fn([]Received{{ID: id, Data: data, WireBytes: int64(len(data))}}, func() {}); err != nil {
			return err
		}
	}
	return nil
}

// publish builds a release of "hello" with files (path → content) on m.
func (m *memSource) publish(t *testing.T, files map[string]string) (string, *manifest.Manifest) {
	t.Helper()
	src := t.TempDir()
	for p, content := range files {
		name := filepath.Join(src, p)
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	man, err := manifest.Build(context.Background(), src, "hello", appspec.Spec{Name: "hello", Run: appspec.Run{Command: "true"}}, m)
	if err != nil {
		t.Fatal(err)
	}
	b := man.Encode()
	id := manifest.ReleaseID(b)
	m.mu.Lock()
	m.manifests[id] = b
	m.mu.Unlock()
	return id, man
}

func newMemStager(t *testing.T, src *memSource, tune func(*Config)) *Stager {
	t.Helper()
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	cfg := Config{Store: st, Root: t.TempDir(), Source: src, CommitBytes: 1}
	if tune != nil {
		tune(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type priority struct{ nice, class, level int }

func current(t *testing.T) priority {
	nice, class, level, err := threadPriority()
	if err != nil {
		t.Errorf("read the thread's priority: %v", err)
	}
	return priority{nice, class, level}
}

// TestStagingThreadsRunAtLowPriority reads back, on the threads that
// receive and hash the chunks and that fsync and report them, the nice
// value and I/O priority while a stage runs; the caller's thread keeps its own.
func TestStagingThreadsRunAtLowPriority(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	before := current(t)
	if before.nice >= stageNice {
		t.Skipf("the test runs at nice %d already", before.nice)
	}
	src := &memSource{manifests: map[string][]byte{}, chunks: map[manifest.ChunkID][]byte{}}
	id, _ := src.publish(t, map[string]string{"a": "some content\n", "b/c": "more content\n"})
	var mu sync.Mutex
	var seen []priority
	record := func() {
		p := current(t)
		mu.Lock()
		seen = append(seen, p)
		mu.Unlock()
	}
	src.onFetch = record
	s := newMemStager(t, src, nil)
	progress := 0
	if _, err := s.Stage(context.Background(), []Release{{Application: "hello", ID: id}}, 0, func(Progress) {
		if progress++; progress > 1 { // the first report comes from the caller, before staging
			record()
		}
	}); err != nil {
		t.Fatal(err)
	}
	want := priority{stageNice, ioprioClassBE, stageIOLevel}
	if len(seen) < 3 {
		t.Fatalf("priorities seen on %d staging threads, want the receiver's and the committer's", len(seen))
	}
	for _, p := range seen {
		if p != want {
			t.Errorf("staging thread runs at nice %d, I/O class %d level %d; want nice 10, best-effort (2) level 7", p.nice, p.class, p.level)
		}
	}
	err := s.lowered(func() error {
		if p := current(t); p != want {
			t.Errorf("lowered worker runs at %+v, want %+v", p, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if after := current(t); after != before {
		t.Errorf("the caller's thread went from %+v to %+v: the priority leaked", before, after)
	}
}
