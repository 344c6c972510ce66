package session

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/cutover-dev/cutover/pkg/poll"
	"github.com/cutover-dev/cutover/pkg/rpcerr"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// fakeController is an AgentService whose Connect hands each session to the test.
type fakeController struct {
	cutoverv1.UnimplementedAgentServiceServer
	sessions chan *fakeSession
	// refuse, if set, ends every session after its hello with this error
	// (a follower's NotLeader, say), converted as the controller does.
	refuse error
}

type fakeSession struct {
	hello  *cutoverv1.AgentHello
	stream grpc.BidiStreamingServer[cutoverv1.ConnectRequest, cutoverv1.ConnectResponse]
	msgs   chan *cutoverv1.ConnectRequest
	end    chan error
}

func (f *fakeController) Connect(stream grpc.BidiStreamingServer[cutoverv1.ConnectRequest, cutoverv1.ConnectResponse]) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	if f.refuse != nil {
		return rpcerr.ToStatus(nil, f.refuse)
	}
	s := &fakeSession{hello: first.GetHello(), stream: stream, msgs: make(chan *cutoverv1.ConnectRequest, 100), end: make(chan error, 1)}
	f.sessions <- s
	go func() {
		for {
			m, err := stream.Recv()
			if err != nil {
				return
			}
			s.msgs <- m
		}
	}()
	select {
	case err := <-s.end:
		return err
	case <-stream.Context().Done():
		return nil
	}
}

func serve(t *testing.T, f *fakeController, addr string) (*grpc.Server, string) {
	t.Helper()
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	cutoverv1.RegisterAgentServiceServer(srv, f)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return srv, lis.Addr().String()
}

// fakeHandler answers commands with a scripted result.
type fakeHandler struct {
	mu      sync.Mutex
	calls   map[string]int
	release chan struct{} // if set, Handle waits for it
}

func (h *fakeHandler) Handle(_ context.Context, cmd Command, progress func(Report)) Report {
	h.mu.Lock()
	h.calls[cmd.ID]++
	h.mu.Unlock()
	if h.release != nil {
		<-h.release
	}
	progress(Report{CommandID: cmd.ID, Deployment: cmd.Deployment, Outcome: Progress, ReleaseBytes: 10, TransferredBytes: 4})
	r := Report{CommandID: cmd.ID, Deployment: cmd.Deployment, Outcome: Done, ReleaseBytes: 10, TransferredBytes: 10}
	if cmd.Kind == KindCommit {
		r.Outcome, r.Error, r.SwappedBack = Failed, "health check failed", true
		r.SwapTime = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	return r
}

func (h *fakeHandler) Status() ([]AppStatus, error) {
	return []AppStatus{{Name: "hello", Running: "r1", Staged: []string{"r1", "r2"}}}, nil
}

func (h *fakeHandler) count(id string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.calls[id]
}

// startAgent runs a session of agent fe-1 with h against the fake
// controller at addr, its configuration changed by mods, until the test
// ends.
func startAgent(t *testing.T, addr string, h Handler, mods ...func(*Config)) *Session {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials())) // the fake controller of this package's tests
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	cfg := Config{Conn: conn, Name: "fe-1", Environment: "prod", Labels: map[string]string{"role": "web"},
		Handler: h, MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond}
	for _, mod := range mods {
		mod(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return s
}

func next[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatal("timed out")
		panic("unreachable")
	}
}

// finalReport reads messages until a DONE or FAILED report, checking that a
// status came before it.
func finalReport(t *testing.T, s *fakeSession) *cutoverv1.CommandReport {
	t.Helper()
	sawStatus := false
	for {
		m := next(t, s.msgs)
		if m.GetStatus() != nil {
			sawStatus = true
		}
		if r := m.GetReport(); r != nil && r.GetOutcome() != cutoverv1.CommandOutcome_COMMAND_OUTCOME_PROGRESS {
			if !sawStatus {
				t.Error("final report came before a status update")
			}
			return r
		}
	}
}

func TestHelloCommandsReports(t *testing.T) {
	f := &fakeController{sessions: make(chan *fakeSession, 4)}
	_, addr := serve(t, f, "127.0.0.1:0")
	startAgent(t, addr, &fakeHandler{calls: map[string]int{}})
	s := next(t, f.sessions)
	if h := s.hello; h.GetName() != "fe-1" || h.GetEnvironment() != "prod" || h.GetLabels()["role"] != "web" ||
		len(h.GetStatus().GetApplications()) != 1 || h.GetStatus().GetApplications()[0].GetRunningReleaseId() != "r1" {
		t.Fatalf("hello = %v", h)
	}
	err := s.stream.Send(&cutoverv1.ConnectResponse{Command: &cutoverv1.ConnectResponse_Stage{Stage: &cutoverv1.StageCommand{
		CommandId: "c1", DeploymentId: "d-1", Releases: []*cutoverv1.ReleaseRef{{Application: "hello", ReleaseId: "r2"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	r := finalReport(t, s)
	if r.GetCommandId() != "c1" || r.GetDeploymentId() != "d-1" || r.GetOutcome() != cutoverv1.CommandOutcome_COMMAND_OUTCOME_DONE ||
		r.GetTransferredBytes() != 10 || r.GetSwapTime() != nil {
		t.Errorf("stage report = %v", r)
	}
	err = s.stream.Send(&cutoverv1.ConnectResponse{Command: &cutoverv1.ConnectResponse_Commit{Commit: &cutoverv1.CommitCommand{
		CommandId: "c2", DeploymentId: "d-1", Releases: []*cutoverv1.ReleaseRef{{Application: "hello", ReleaseId: "r2"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	r = finalReport(t, s)
	if r.GetOutcome() != cutoverv1.CommandOutcome_COMMAND_OUTCOME_FAILED || !r.GetSwappedBack() ||
		r.GetError() != "health check failed" || r.GetSwapTime().AsTime().Year() != 2026 {
		t.Errorf("activate report = %v", r)
	}
}

func TestReconnectsAfterControllerRestart(t *testing.T) {
	f := &fakeController{sessions: make(chan *fakeSession, 4)}
	srv, addr := serve(t, f, "127.0.0.1:0")
	s := startAgent(t, addr, &fakeHandler{calls: map[string]int{}})
	first := next(t, f.sessions)
	first.end <- errors.New("controller closes the session")
	next(t, f.sessions) // the agent came back on the same server

	srv.Stop() // the controller goes away…
	_, _ = serve(t, f, addr)
	second := next(t, f.sessions) // …and comes back on the same address
	if second.hello.GetName() != "fe-1" {
		t.Errorf("hello after restart = %v", second.hello)
	}
	if err := poll.True(context.Background(), 10*time.Second, "session reported connected", func() bool {
		ok, n := s.Connected()
		return ok && n >= 3
	}); err != nil {
		t.Fatal(err)
	}
}

func TestResentCommandRunsOnce(t *testing.T) {
	f := &fakeController{sessions: make(chan *fakeSession, 4)}
	_, addr := serve(t, f, "127.0.0.1:0")
	h := &fakeHandler{calls: map[string]int{}, release: make(chan struct{})}
	startAgent(t, addr, h)
	s := next(t, f.sessions)
	cmd := &cutoverv1.ConnectResponse{Command: &cutoverv1.ConnectResponse_Stage{Stage: &cutoverv1.StageCommand{CommandId: "c1", DeploymentId: "d-1"}}}
	for range 2 {
		if err := s.stream.Send(cmd); err != nil {
			t.Fatal(err)
		}
	}
	// A third, distinct command proves the agent read past the duplicate.
	other := &cutoverv1.ConnectResponse{Command: &cutoverv1.ConnectResponse_Drop{Drop: &cutoverv1.DropCommand{CommandId: "c2", DeploymentId: "d-1"}}}
	if err := s.stream.Send(other); err != nil {
		t.Fatal(err)
	}
	if err := poll.True(context.Background(), 10*time.Second, "c2 runs", func() bool { return h.count("c2") > 0 }); err != nil {
		t.Fatal(err)
	}
	close(h.release)
	finalReport(t, s)
	if n := h.count("c1"); n != 1 {
		t.Errorf("c1 ran %d times, want 1", n)
	}
}

// TestRunIDPerRun checks that the reports of one run of a command share a
// run id, and that running the command again (a resend after the first run
// ended) gives the new run's reports another one: the controller adds up
// what the runs transferred, each counting from 0.
func TestRunIDPerRun(t *testing.T) {
	f := &fakeController{sessions: make(chan *fakeSession, 4)}
	_, addr := serve(t, f, "127.0.0.1:0")
	startAgent(t, addr, &fakeHandler{calls: map[string]int{}})
	s := next(t, f.sessions)
	cmd := &cutoverv1.ConnectResponse{Command: &cutoverv1.ConnectResponse_Stage{Stage: &cutoverv1.StageCommand{CommandId: "c1", DeploymentId: "d-1"}}}
	var runs []string
	for range 2 {
		if err := s.stream.Send(cmd); err != nil {
			t.Fatal(err)
		}
		var ids []string
		for done := false; !done; {
			r := next(t, s.msgs).GetReport()
			if r == nil {
				continue
			}
			ids = append(ids, r.GetRunId())
			done = r.GetOutcome() != cutoverv1.CommandOutcome_COMMAND_OUTCOME_PROGRESS
		}
		if len(ids) != 2 || ids[0] == "" || ids[0] != ids[1] {
			t.Fatalf("run ids of the progress and final reports of one run = %q, want two equal non-empty ids", ids)
		}
		runs = append(runs, ids[0])
	}
	if runs[0] == runs[1] {
		t.Errorf("the second run of c1 reused run id %q", runs[0])
	}
}

// statusHandler reports what its running field says.
type statusHandler struct {
	fakeHandler
	mu      sync.Mutex
	running string
}

func (h *statusHandler) Status() ([]AppStatus, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return []AppStatus{{Name: "hello", Running: h.running}}, nil
}

// A change of what the agent runs that no command made (a `current`
// changed by hand) reaches the controller within StatusEvery.
func TestStatusReportedWhenItChanges(t *testing.T) {
	f := &fakeController{sessions: make(chan *fakeSession, 4)}
	_, addr := serve(t, f, "127.0.0.1:0")
	h := &statusHandler{fakeHandler: fakeHandler{calls: map[string]int{}}, running: "r1"}
	startAgent(t, addr, h, func(cfg *Config) { cfg.StatusEvery = 10 * time.Millisecond })

	sess := next(t, f.sessions)
	if got := sess.hello.GetStatus().GetApplications()[0].GetRunningReleaseId(); got != "r1" {
		t.Fatalf("hello says %s runs, want r1", got)
	}
	h.mu.Lock()
	h.running = "r0"
	h.mu.Unlock()
	m := next(t, sess.msgs)
	if got := m.GetStatus().GetApplications()[0].GetRunningReleaseId(); got != "r0" {
		t.Fatalf("status says %s runs, want r0 (message %v)", got, m)
	}
	select {
	case m := <-sess.msgs:
		t.Errorf("a status that did not change was sent again: %v", m)
	case <-time.After(50 * time.Millisecond): // five periods: nothing new to say
	}
}
