package stage_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/klauspost/compress/zstd"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/cutover-dev/cutover/agent/session"
	"github.com/cutover-dev/cutover/pkg/appspec"
	"github.com/cutover-dev/cutover/pkg/manifest"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// fakeController is a tiny AgentService that serves manifests and chunks,
// with faults to inject.
type fakeController struct {
	cutoverv1.UnimplementedAgentServiceServer

	mu        sync.Mutex
	manifests map[string][]byte
	chunks    map[manifest.ChunkID][]byte
	compress  bool
	// corrupt[id] is how many more times chunk id is sent with a flipped byte (-1: always).
	corrupt map[manifest.ChunkID]int
	// failAfter > 0: FetchChunks fails once that many chunks were sent in all (once).
	failAfter int
	sent      int
	// requested counts how often each chunk was asked for; suspected how
	// often it was named among the suspect ids.
	requested map[manifest.ChunkID]int
	suspected map[manifest.ChunkID]int
	// perBatch is how many chunks go into one response.
	perBatch int
	// manifestDown makes GetManifest answer UNAVAILABLE; gets counts the calls.
	manifestDown bool
	gets         int
}

func newFake() *fakeController {
	return &fakeController{manifests: map[string][]byte{}, chunks: map[manifest.ChunkID][]byte{},
		corrupt: map[manifest.ChunkID]int{}, requested: map[manifest.ChunkID]int{}, suspected: map[manifest.ChunkID]int{}, perBatch: 2}
}

// PutChunks makes the fake a manifest.ChunkSink.
func (f *fakeController) PutChunks(chunks []manifest.Chunk) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range chunks {
		f.chunks[c.ID] = append([]byte(nil), c.Data...)
	}
	return nil
}

func (f *fakeController) GetManifest(_ context.Context, req *cutoverv1.GetManifestRequest) (*cutoverv1.GetManifestResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gets++
	if f.manifestDown {
		return nil, status.Error(codes.Unavailable, "controller restarting")
	}
	b, ok := f.manifests[req.GetReleaseId()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "release %s not found", req.GetReleaseId())
	}
	return &cutoverv1.GetManifestResponse{Manifest: b}, nil
}

func (f *fakeController) FetchChunks(req *cutoverv1.FetchChunksRequest, stream grpc.ServerStreamingServer[cutoverv1.FetchChunksResponse]) error {
	enc, _ := zstd.NewWriter(nil)
	var batch []*cutoverv1.Chunk
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := stream.Send(&cutoverv1.FetchChunksResponse{Chunks: batch})
		batch = nil
		return err
	}
	f.mu.Lock()
	for _, raw := range req.GetSuspectIds() {
		f.suspected[manifest.ChunkID(raw)]++
	}
	f.mu.Unlock()
	for _, raw := range req.GetIds() {
		id := manifest.ChunkID(raw)
		f.mu.Lock()
		f.requested[id]++
		if f.failAfter > 0 && f.sent >= f.failAfter {
			f.failAfter = 0
			f.mu.Unlock()
			if err := flush(); err != nil {
				return err
			}
			return status.Error(codes.Unavailable, "injected failure")
		}
		data := append([]byte(nil), f.chunks[id]...)
		if n := f.corrupt[id]; n != 0 {
			data[0] ^= 0xff
			f.corrupt[id] = n - 1
		}
		compress := f.compress
		f.mu.Unlock()
		c := &cutoverv1.Chunk{Id: raw, Data: data}
		if compress {
			c.Data, c.Compressed = enc.EncodeAll(data, nil), true
		}
		batch = append(batch, c)
		f.mu.Lock()
		f.sent++
		f.mu.Unlock()
		if len(batch) >= f.perBatch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

func (f *fakeController) manifestCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.gets
}

func (f *fakeController) suspicions(id manifest.ChunkID) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.suspected[id]
}

func (f *fakeController) requests(id manifest.ChunkID) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requested[id]
}

// serve starts f on 127.0.0.1:0 and returns a Source connected to it.
func (f *fakeController) serve(t *testing.T) *session.Source {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	cutoverv1.RegisterAgentServiceServer(srv, f)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return session.NewSource(conn, "test", "agent-1")
}

// release builds a release of app "hello" from files (path → content; a
// content starting with "->" makes a symlink) and publishes it on f.
func (f *fakeController) release(t *testing.T, files map[string]string) (id string, src string, m *manifest.Manifest) {
	t.Helper()
	src = t.TempDir()
	for p, content := range files {
		name := filepath.Join(src, p)
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			t.Fatal(err)
		}
		if target, ok := cutLink(content); ok {
			if err := os.Symlink(target, name); err != nil {
				t.Fatal(err)
			}
			continue
		}
		mode := os.FileMode(0o644)
		if filepath.Ext(p) == ".sh" {
			mode = 0o755
		}
		if err := os.WriteFile(name, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(name, mode); err != nil {
			t.Fatal(err)
		}
	}
	m, err := manifest.Build(context.Background(), src, "hello", appspecFor("hello"), f)
	if err != nil {
		t.Fatal(err)
	}
	b := m.Encode()
	id = manifest.ReleaseID(b)
	f.mu.Lock()
	f.manifests[id] = b
	f.mu.Unlock()
	return id, src, m
}

func cutLink(s string) (string, bool) {
	if len(s) > 2 && s[:2] == "->" {
		return s[2:], true
	}
	return "", false
}

// bigContent returns n bytes that chunk into several chunks.
func bigContent(seed, n int) string {
	b := make([]byte, n)
	x := uint32(seed*2654435761 + 1)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return string(b)
}

func appspecFor(app string) appspec.Spec {
	return appspec.Spec{Name: app, Run: appspec.Run{Command: "true"}}
}
