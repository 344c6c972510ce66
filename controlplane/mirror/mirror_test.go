package mirror

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/cutover-dev/cutover/controlplane/agentapi"
	"github.com/cutover-dev/cutover/controlplane/fleet"
	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/controlplane/store"
	"github.com/cutover-dev/cutover/controlplane/transfer"
	"github.com/cutover-dev/cutover/pkg/chunkwire"
	"github.com/cutover-dev/cutover/pkg/manifest"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// leader serves the real AgentService over loopback from a real store
// holding one release, and returns a client of it and the store. (The
// records are read from the same store, as every controller reads them
// from etcd.)
func leader(t *testing.T, files map[string][]byte) (cutoverv1.AgentServiceClient, *store.Store, string) {
	t.Helper()
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	m := &manifest.Manifest{Application: "hello"}
	var chunks []manifest.Chunk
	for path, data := range files {
		id := manifest.HashChunk(data)
		chunks = append(chunks, manifest.Chunk{ID: id, Data: data})
		m.Files = append(m.Files, manifest.File{Path: path, Mode: 0o644, Size: int64(len(data)), Chunks: []manifest.ChunkRef{{ID: id, Size: int64(len(data))}}})
	}
	enc := m.Encode()
	id := manifest.ReleaseID(enc)
	if err := st.PutChunks(chunks); err != nil {
		t.Fatal(err)
	}
	if err := st.Update(func(tx model.Tx) error {
		if err := tx.PutApplication(&model.Application{Name: "hello"}); err != nil {
			return err
		}
		return tx.PutRelease(&model.Release{ID: id, Application: "hello", CreateTime: time.Now()}, enc)
	}); err != nil {
		t.Fatal(err)
	}
	f, err := fleet.New(fleet.Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	sender, err := transfer.New(transfer.Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.ForceServerCodecV2(chunkwire.Codec{}))
	cutoverv1.RegisterAgentServiceServer(srv, agentapi.New(agentapi.Config{Store: st, Fleet: f, Transfer: sender, Log: slog.New(slog.DiscardHandler)}))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials())) // the real TLS is tested in e2e
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(); f.Close(); srv.Stop() })
	return cutoverv1.NewAgentServiceClient(conn), st, id
}

func TestRoundCopiesWhatIsMissing(t *testing.T) {
	files := map[string][]byte{"a": []byte(strings.Repeat("compressible ", 10000)), "b": []byte("short"), "c": []byte("another file")}
	client, records, release := leader(t, files)
	local, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	// The follower already holds b's chunk: it is not fetched again.
	if err := local.PutChunks([]manifest.Chunk{{ID: manifest.HashChunk(files["b"]), Data: files["b"]}}); err != nil {
		t.Fatal(err)
	}
	m, err := New(Config{Records: records, Chunks: local})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.Round(ctx, client); err != nil {
		t.Fatal(err)
	}
	err = local.View(func(tx model.Tx) error {
		for path, data := range files {
			got, err := tx.Chunk(manifest.HashChunk(data))
			if err != nil || string(got) != string(data) {
				t.Errorf("file %s's chunk after the round: %d bytes, %v", path, len(got), err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !m.done[release] {
		t.Errorf("release %s not marked mirrored", release)
	}
	missing, err := m.missing([]manifest.ChunkID{manifest.HashChunk(files["a"])})
	if err != nil || len(missing) != 0 {
		t.Errorf("missing after the round: %v, %v", missing, err)
	}
}
