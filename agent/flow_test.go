package agent

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/cutover-dev/cutover/agent/layout"
	"github.com/cutover-dev/cutover/pkg/appspec"
	"github.com/cutover-dev/cutover/pkg/manifest"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// miniController is just enough AgentService to drive one agent.
type miniController struct {
	cutoverv1.UnimplementedAgentServiceServer
	mu        sync.Mutex
	manifests map[string][]byte
	chunks    map[manifest.ChunkID][]byte
	streams   chan grpc.BidiStreamingServer[cutoverv1.ConnectRequest, cutoverv1.ConnectResponse]
	msgs      chan *cutoverv1.ConnectRequest
}

func (c *miniController) PutChunks(chunks []manifest.Chunk) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ch := range chunks {
		c.chunks[ch.ID] = append([]byte(nil), ch.Data...)
	}
	return nil
}

func (c *miniController) GetManifest(_ context.Context, req *cutoverv1.GetManifestRequest) (*cutoverv1.GetManifestResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.manifests[req.GetReleaseId()]
	if !ok {
		return nil, status.Error(codes.NotFound, "no such release")
	}
	return &cutoverv1.GetManifestResponse{Manifest: b}, nil
}

func (c *miniController) FetchChunks(req *cutoverv1.FetchChunksRequest, stream grpc.ServerStreamingServer[cutoverv1.FetchChunksResponse]) error {
	resp := &cutoverv1.FetchChunksResponse{}
	c.mu.Lock()
	for _, id := range req.GetIds() {
		resp.Chunks = append(resp.Chunks, &cutoverv1.Chunk{Id: id, Data: c.chunks[manifest.ChunkID(id)]})
	}
	c.mu.Unlock()
	return stream.Send(resp)
}

func (c *miniController) Connect(stream grpc.BidiStreamingServer[cutoverv1.ConnectRequest, cutoverv1.ConnectResponse]) error {
	c.streams <- stream
	for {
		m, err := stream.Recv()
		if err != nil {
			return nil
		}
		c.msgs <- m
	}
}

// release builds a release of "hello" whose VERSION file says version.
func (c *miniController) release(t *testing.T, version string) string {
	t.Helper()
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "VERSION"), []byte(version), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := appspec.Spec{Name: "hello", Run: appspec.Run{Command: "exec sleep 100"}}
	m, err := manifest.Build(context.Background(), src, "hello", spec, c)
	if err != nil {
		t.Fatal(err)
	}
	b := m.Encode()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.manifests[manifest.ReleaseID(b)] = b
	return manifest.ReleaseID(b)
}

// result waits for the final report of command id, and returns it with the
// last status sent before it.
func (c *miniController) result(t *testing.T, id string) (*cutoverv1.CommandReport, *cutoverv1.AgentStatus) {
	t.Helper()
	var st *cutoverv1.AgentStatus
	timeout := time.After(20 * time.Second)
	for {
		select {
		case m := <-c.msgs:
			if m.GetStatus() != nil {
				st = m.GetStatus()
			}
			if r := m.GetReport(); r.GetCommandId() == id && r.GetOutcome() != cutoverv1.CommandOutcome_COMMAND_OUTCOME_PROGRESS {
				return r, st
			}
		case <-timeout:
			t.Fatalf("no result for %s", id)
		}
	}
}

// TestStageActivateRollbackThroughTheSession drives a real agent through its
// gRPC session: stage v1, activate it, stage and activate v2, roll v2 back.
func TestStageActivateRollbackThroughTheSession(t *testing.T) {
	c := &miniController{manifests: map[string][]byte{}, chunks: map[manifest.ChunkID][]byte{},
		streams: make(chan grpc.BidiStreamingServer[cutoverv1.ConnectRequest, cutoverv1.ConnectResponse], 4),
		msgs:    make(chan *cutoverv1.ConnectRequest, 100)}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(enrolled(t, dataDir))))
	cutoverv1.RegisterAgentServiceServer(srv, c)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)

	root := t.TempDir()
	a, err := New(Config{Controller: lis.Addr().String(), Environment: "prod", Name: "fe-1", DataDir: dataDir, Root: root})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	var stream grpc.BidiStreamingServer[cutoverv1.ConnectRequest, cutoverv1.ConnectResponse]
	select {
	case stream = <-c.streams:
	case <-time.After(20 * time.Second):
		t.Fatal("agent never connected")
	}
	if hello := (<-c.msgs).GetHello(); hello.GetName() != "fe-1" || hello.GetEnvironment() != "prod" {
		t.Fatalf("hello = %v", hello)
	}
	refs := func(id string) []*cutoverv1.ReleaseRef {
		return []*cutoverv1.ReleaseRef{{Application: "hello", ReleaseId: id}}
	}
	send := func(m *cutoverv1.ConnectResponse) {
		if err := stream.Send(m); err != nil {
			t.Fatal(err)
		}
	}
	stageAndActivate := func(d, id string) *cutoverv1.CommandReport {
		send(&cutoverv1.ConnectResponse{Command: &cutoverv1.ConnectResponse_Stage{Stage: &cutoverv1.StageCommand{CommandId: d + "-s", DeploymentId: d, Releases: refs(id)}}})
		r, st := c.result(t, d+"-s")
		if r.GetOutcome() != cutoverv1.CommandOutcome_COMMAND_OUTCOME_DONE || r.GetTransferredBytes() == 0 {
			t.Fatalf("stage report = %v", r)
		}
		if apps := st.GetApplications(); len(apps) != 1 || !slices.Contains(apps[0].GetStagedReleaseIds(), id) {
			t.Errorf("status after stage = %v", st)
		}
		send(&cutoverv1.ConnectResponse{Command: &cutoverv1.ConnectResponse_Arm{Arm: &cutoverv1.ArmCommand{CommandId: d + "-arm", DeploymentId: d, Releases: refs(id), VerifyOnly: true}}})
		if r, _ := c.result(t, d+"-arm"); r.GetOutcome() != cutoverv1.CommandOutcome_COMMAND_OUTCOME_DONE {
			t.Fatalf("arm report = %v", r)
		}
		if next, err := os.Readlink(layout.NextPath(root, "hello")); err != nil || next != layout.CurrentTarget(id) {
			t.Fatalf("current.next after arm = %q, %v", next, err)
		}
		send(&cutoverv1.ConnectResponse{Command: &cutoverv1.ConnectResponse_Commit{Commit: &cutoverv1.CommitCommand{CommandId: d + "-a", DeploymentId: d, Releases: refs(id)}}})
		r, st = c.result(t, d+"-a")
		if r.GetOutcome() != cutoverv1.CommandOutcome_COMMAND_OUTCOME_DONE || r.GetSwapTime() == nil {
			t.Fatalf("activate report = %v", r)
		}
		if apps := st.GetApplications(); len(apps) != 1 || apps[0].GetRunningReleaseId() != id {
			t.Errorf("status after activate = %v", st)
		}
		return r
	}
	v1, v2 := c.release(t, "v1"), c.release(t, "v2")
	stageAndActivate("d-1", v1)
	stageAndActivate("d-2", v2)
	if cur, _ := layout.Current(root, "hello"); cur != v2 {
		t.Fatalf("current = %s, want v2 %s", cur, v2)
	}
	send(&cutoverv1.ConnectResponse{Command: &cutoverv1.ConnectResponse_Rollback{Rollback: &cutoverv1.RollbackCommand{CommandId: "d-2-r", DeploymentId: "d-2"}}})
	if r, _ := c.result(t, "d-2-r"); r.GetOutcome() != cutoverv1.CommandOutcome_COMMAND_OUTCOME_DONE {
		t.Fatalf("rollback report = %v", r)
	}
	if cur, _ := layout.Current(root, "hello"); cur != v1 {
		t.Errorf("current after rollback = %s, want v1 %s", cur, v1)
	}
	if info, ok := a.procs.Info("hello"); !ok || info.Release != v1 {
		t.Errorf("running after rollback = %+v, %v; want v1", info, ok)
	}
}
