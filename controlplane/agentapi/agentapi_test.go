package agentapi

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"reflect"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cutover-dev/cutover/controlplane/fleet"
	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/controlplane/store"
	"github.com/cutover-dev/cutover/controlplane/transfer"
	"github.com/cutover-dev/cutover/pkg/chunkwire"
	"github.com/cutover-dev/cutover/pkg/errkind"
	"github.com/cutover-dev/cutover/pkg/manifest"
	"github.com/cutover-dev/cutover/pkg/rpcerr"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

func serve(t *testing.T) (cutoverv1.AgentServiceClient, *store.Store, *fleet.Fleet) {
	t.Helper()
	return serveAt(t, 0)
}

// serveAt is serve with the leader's epoch given.
func serveAt(t *testing.T, epoch uint64) (cutoverv1.AgentServiceClient, *store.Store, *fleet.Fleet) {
	t.Helper()
	return serveAs(t, epoch, nil)
}

// serveAs is serveAt with a leader function (nil: this controller leads).
func serveAs(t *testing.T, epoch uint64, leader func() (string, bool)) (cutoverv1.AgentServiceClient, *store.Store, *fleet.Fleet) {
	t.Helper()
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f, err := fleet.New(fleet.Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	sender, err := transfer.New(transfer.Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.ForceServerCodecV2(chunkwire.Codec{}),
		grpc.UnaryInterceptor(rpcerr.UnaryServerInterceptor(log)), grpc.StreamInterceptor(rpcerr.StreamServerInterceptor(log)))
	cutoverv1.RegisterAgentServiceServer(srv, New(Config{Store: st, Fleet: f, Transfer: sender, Log: log,
		Epoch: func() uint64 { return epoch }, Leader: leader}))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(lis)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		f.Close()
		srv.Stop()
		st.Close()
	})
	return cutoverv1.NewAgentServiceClient(conn), st, f
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestFetchChunksBatches(t *testing.T) {
	client, st, _ := serve(t)
	var chunks []manifest.Chunk
	rng := rand.New(rand.NewPCG(1, 2))
	for range 5 {
		data := make([]byte, 400<<10) // random: not compressed
		for j := range data {
			data[j] = byte(rng.Uint32())
		}
		chunks = append(chunks, manifest.Chunk{ID: manifest.HashChunk(data), Data: data})
	}
	if err := st.PutChunks(chunks); err != nil {
		t.Fatal(err)
	}
	req := &cutoverv1.FetchChunksRequest{}
	for _, c := range chunks {
		req.Ids = append(req.Ids, c.ID[:])
	}
	stream, err := client.FetchChunks(testCtx(t), req)
	if err != nil {
		t.Fatal(err)
	}
	var sizes []int
	n := 0
	for {
		resp, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, len(resp.Chunks))
		for _, c := range resp.Chunks {
			if !bytes.Equal(c.Id, chunks[n].ID[:]) || !bytes.Equal(c.Data, chunks[n].Data) {
				t.Fatalf("chunk %d out of order or wrong", n)
			}
			n++
		}
	}
	// 400 KiB chunks, about 1 MiB per message: 2, 2, 1.
	if len(sizes) != 3 || sizes[0] != 2 || sizes[1] != 2 || sizes[2] != 1 {
		t.Fatalf("batches = %v, want [2 2 1]", sizes)
	}
}

func TestAgentAPIErrors(t *testing.T) {
	client, _, _ := serve(t)
	ctx := testCtx(t)
	recvErr := func(req *cutoverv1.FetchChunksRequest) error {
		stream, err := client.FetchChunks(ctx, req)
		if err != nil {
			return err
		}
		_, err = stream.Recv()
		return err
	}
	missing := manifest.HashChunk([]byte("nope"))
	tests := []struct {
		name string
		err  error
		code codes.Code
	}{
		{"unknown release", func() error {
			_, err := client.GetManifest(ctx, &cutoverv1.GetManifestRequest{ReleaseId: "abc"})
			return err
		}(), codes.NotFound},
		{"short chunk id", recvErr(&cutoverv1.FetchChunksRequest{Ids: [][]byte{{1, 2}}}), codes.InvalidArgument},
		{"unknown chunk", recvErr(&cutoverv1.FetchChunksRequest{Ids: [][]byte{missing[:]}}), codes.NotFound},
		{"no hello first", func() error {
			stream, err := client.Connect(ctx)
			if err != nil {
				return err
			}
			_ = stream.Send(&cutoverv1.ConnectRequest{Msg: &cutoverv1.ConnectRequest_Status{Status: &cutoverv1.AgentStatus{}}})
			_, err = stream.Recv()
			return err
		}(), codes.InvalidArgument},
	}
	for _, tt := range tests {
		if status.Code(tt.err) != tt.code {
			t.Errorf("%s: err = %v, want %v", tt.name, tt.err, tt.code)
		}
	}
}

func TestConnectCarriesCommandsAndReports(t *testing.T) {
	client, _, f := serveAt(t, 42)
	ctx := testCtx(t)
	stream, err := client.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	hello := &cutoverv1.AgentHello{Name: "fe1", Environment: "prod", Status: &cutoverv1.AgentStatus{
		Applications: []*cutoverv1.AgentApplication{{Name: "hello", RunningReleaseId: "r1"}}}}
	if err := stream.Send(&cutoverv1.ConnectRequest{Msg: &cutoverv1.ConnectRequest_Hello{Hello: hello}}); err != nil {
		t.Fatal(err)
	}
	f.Send("fe1", fleet.Command{Kind: fleet.Commit, ID: "d-1.commit.fe1", DeploymentID: "d-1",
		Releases: []fleet.ReleaseRef{{Application: "hello", ReleaseID: "r2"}}, KeepReleases: 5})
	msg, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	act := msg.GetCommit()
	if act.GetCommandId() != "d-1.commit.fe1" || act.GetReleases()[0].GetReleaseId() != "r2" || act.GetKeepReleases() != 5 || msg.GetEpoch() != 42 {
		t.Fatalf("command = %v", msg)
	}
	for _, c := range []fleet.Command{
		{Kind: fleet.Stage, ID: "d-1.stage.fe1", DeploymentID: "d-1", StageRate: 7 << 20},
		{Kind: fleet.Arm, ID: "d-1.arm.fe1", DeploymentID: "d-1", StageRate: 9 << 20},
	} {
		f.Send("fe1", c)
		msg, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if got := msg.GetStage().GetStageRate() + msg.GetArm().GetStageRate(); got != c.StageRate {
			t.Errorf("%s command carries stage_rate %d, want %d: %v", c.Kind, got, c.StageRate, msg)
		}
	}
	swap := time.Date(2026, 1, 1, 2, 0, 0, 0, time.UTC)
	rep := &cutoverv1.CommandReport{CommandId: act.CommandId, DeploymentId: "d-1", Outcome: cutoverv1.CommandOutcome_COMMAND_OUTCOME_FAILED,
		Error: "unhealthy", SwappedBack: true, SwapTime: timestamppb.New(swap),
		Hooks: []*cutoverv1.HookResult{{Application: "hello", Kind: cutoverv1.HookKind_HOOK_KIND_VALIDATE, Index: 1, Command: "smoke",
			ExitCode: 2, Duration: durationpb.New(time.Second), Output: "bad", Error: "exited with status 2"}}}
	if err := stream.Send(&cutoverv1.ConnectRequest{Msg: &cutoverv1.ConnectRequest_Report{Report: rep}}); err != nil {
		t.Fatal(err)
	}
	r := <-f.Reports()
	want := fleet.Report{Agent: "fe1", CommandID: act.CommandId, DeploymentID: "d-1", Outcome: fleet.CommandFailed,
		Error: "unhealthy", SwapTime: swap, SwappedBack: true,
		Hooks: []model.HookResult{{HookRef: model.HookRef{Application: "hello", Kind: "validate", Index: 1}, Command: "smoke",
			ExitCode: 2, Duration: time.Second, Output: "bad", Error: "exited with status 2"}}}
	if !reflect.DeepEqual(r, want) {
		t.Fatalf("report = %+v\nwant     %+v", r, want)
	}
	if v := f.Connected("prod"); len(v) != 1 || v[0].Applications[0].RunningReleaseID != "r1" {
		t.Fatalf("connected = %+v", v)
	}
	_ = stream.CloseSend()
	if _, err := stream.Recv(); err != io.EOF {
		t.Fatalf("after CloseSend: %v, want EOF", err)
	}
}

func TestFollowerRefusesSessions(t *testing.T) {
	client, _, f := serveAs(t, 0, func() (string, bool) { return "ctl-2:7070", false })
	stream, err := client.Connect(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	hello := &cutoverv1.AgentHello{Name: "fe1", Environment: "prod"}
	if err := stream.Send(&cutoverv1.ConnectRequest{Msg: &cutoverv1.ConnectRequest_Hello{Hello: hello}}); err != nil {
		t.Fatal(err)
	}
	_, err = stream.Recv()
	var nl *errkind.NotLeader
	if !errors.As(rpcerr.FromStatus(err), &nl) || nl.Leader != "ctl-2:7070" {
		t.Fatalf("a follower's session: %v; want NotLeader naming ctl-2:7070", err)
	}
	if v := f.Connected("prod"); len(v) != 0 {
		t.Errorf("a follower registered the agent: %+v", v)
	}
}
