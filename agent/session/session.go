// Package session is the agent's connection to the controller: it dials
// AgentService.Connect, says hello (name, environment, labels, status),
// receives commands and runs each in its own goroutine through a Handler,
// sends their reports and the agent's status, and reconnects with
// exponential backoff (100 ms … 5 s) whenever the session ends. It also
// provides Source, the gRPC side of staging (GetManifest, FetchChunks).
package session

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/protobuf/proto"

	"github.com/cutover-dev/cutover/pkg/logging"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// Handler runs commands and tells the agent's status.
type Handler interface {
	// Handle runs cmd, calling progress for PROGRESS reports, and returns
	// the final (DONE or FAILED) report once what it reports is durable.
	Handle(ctx context.Context, cmd Command, progress func(Report)) Report
	// Status returns what the agent runs and holds.
	Status() ([]AppStatus, error)
}

// Defaults used when a Config field is zero.
const (
	DefaultMinBackoff = 100 * time.Millisecond
	DefaultMaxBackoff = 5 * time.Second
	// progressEvery is the least time between two PROGRESS reports of a command.
	progressEvery = 200 * time.Millisecond
)

// Config configures a Session.
type Config struct {
	// Conn is the connection to the controller (see Dial).
	Conn grpc.ClientConnInterface
	// Name, Environment and Labels go into the hello.
	Name        string
	Environment string
	Labels      map[string]string
	// PeerAddress, if set, goes into the hello: where this agent serves
	// chunks to its peers.
	PeerAddress string
	// Handler runs the commands.
	Handler Handler
	// Log receives session events.
	Log *slog.Logger
	// MinBackoff and MaxBackoff bound the wait between reconnections.
	MinBackoff, MaxBackoff time.Duration
	// Registerer receives the session metrics; nil: not registered.
	Registerer prometheus.Registerer
	// StatusEvery is how often the agent looks at what it runs and holds
	// and reports it when it changed (a `current` changed by hand is seen
	// as drift within this time); default DefaultStatusEvery.
	StatusEvery time.Duration
	// Targets, if set, are the controllers Conn may move between (see
	// DialTargets): a session refused by a follower moves to the leader it
	// names, one with an unreachable controller to the next address.
	Targets *Targets
	// Fence, if set, keeps the highest controller epoch seen: a command
	// from a lower epoch (a controller that lost its leadership) is
	// refused, reported FAILED, counted, and ends the session. Nil: every
	// command runs.
	Fence Fence
}

// Fence decides whether a command from a controller's epoch may run; a
// higher epoch than any seen is recorded durably before it answers.
type Fence interface {
	AdmitEpoch(epoch uint64) (ok bool, highest uint64, err error)
}

// DefaultStatusEvery is the default of Config.StatusEvery.
const DefaultStatusEvery = 30 * time.Second

// Session keeps the agent connected and runs the controller's commands.
type Session struct {
	cfg     Config
	client  cutoverv1.AgentServiceClient
	metrics *metrics

	sendMu sync.Mutex // serializes stream.Send

	mu       sync.Mutex
	stream   cutoverv1.AgentService_ConnectClient // nil while disconnected
	inflight map[string]bool                      // command ids being run
	sessions int                                  // sessions opened so far
	wg       sync.WaitGroup
}

// Flow control of the connection to the controller. gRPC's default window
// (64 KiB, grown by its bandwidth estimate) keeps a stream of chunk
// batches waiting for window updates on a fast link; a fixed 8 MiB window
// lets the controller send ahead while the agent writes. It bounds what may
// sit unread in the agent's memory.
const (
	windowSize     = 8 << 20
	readBufferSize = 256 << 10
)

// Keepalive (issue 14): a controller that stops answering (stopped, a hung
// host, a cut without a reset) is seen within about 15 s, and the session
// redials, instead of waiting on a dead TCP connection for the kernel's
// timeouts. The agent pings when it has read nothing for KeepaliveTime,
// also between sessions (PermitWithoutStream), and closes the connection
// when the ack has not come KeepaliveTimeout later. 10 s is the shortest
// interval grpc-go lets a client ping at (gRFC A8; it raises less to it).
// A connection that carries data is not pinged. The controller permits
// pings every 5 s or more (controlplane/server.go), and itself pings an
// agent idle for 5 s, so it sees an agent that stopped within about 10 s.
const (
	KeepaliveTime    = 10 * time.Second
	KeepaliveTimeout = 5 * time.Second
)

// Dial returns a client connection to the controller at addr over TLS
// with conf (the agent's certificate and the check of the controller's;
// agent/identity). It does not wait for the controller to be up; the
// connection itself redials with the same 100 ms … 5 s backoff as the
// session (gRPC's default would grow to two minutes while a controller
// restarts). It pings the controller when the connection is idle
// (KeepaliveTime), so that a controller that stopped answering is left
// within about 15 s.
func Dial(addr string, conf *tls.Config) (*grpc.ClientConn, error) {
	return dial(addr, conf)
}

func dial(target string, conf *tls.Config, extra ...grpc.DialOption) (*grpc.ClientConn, error) {
	opts := append(DialOptions(conf),
		grpc.WithInitialWindowSize(windowSize), grpc.WithInitialConnWindowSize(2*windowSize),
		grpc.WithReadBufferSize(readBufferSize))
	conn, err := grpc.NewClient(target, append(opts, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("controller address %q: %w", target, err)
	}
	return conn, nil
}

// ConnectTimeout bounds one attempt to connect to the controller: the TCP
// connection and the TLS handshake. A controller that thousands of
// agents reconnect to at once (its restart, a network cut healed) answers
// handshakes late; an attempt given up after 5 s was started again after
// a backoff, costing the controller the same handshake again, and with
// 5,000 simulated agents on a loaded machine such fetches failed stage 1
// (docs/fleet.md).
const ConnectTimeout = 20 * time.Second

// DialOptions are the options of Dial without its flow-control windows
// and buffer sizes: TLS with conf, the session's redial backoff and the
// keepalive pings.
func DialOptions(conf *tls.Config) []grpc.DialOption {
	return []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(conf)),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: DefaultMinBackoff, Multiplier: 2, Jitter: 0.2, MaxDelay: DefaultMaxBackoff},
			MinConnectTimeout: ConnectTimeout,
		}),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: KeepaliveTime, Timeout: KeepaliveTimeout, PermitWithoutStream: true}),
	}
}

// New returns a Session; Run connects it.
func New(cfg Config) (*Session, error) {
	if cfg.Conn == nil || cfg.Handler == nil || cfg.Name == "" || cfg.Environment == "" {
		return nil, errors.New("session: Conn, Handler, Name and Environment are required")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = DefaultMinBackoff
	}
	if cfg.StatusEvery <= 0 {
		cfg.StatusEvery = DefaultStatusEvery
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(DefaultMaxBackoff, cfg.MinBackoff)
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	return &Session{cfg: cfg, client: cutoverv1.NewAgentServiceClient(cfg.Conn), metrics: m, inflight: map[string]bool{}}, nil
}

// Run keeps a session open until ctx ends, then waits for the commands it
// started to finish, and returns nil.
func (s *Session) Run(ctx context.Context) error {
	defer s.wg.Wait()
	backoff := s.cfg.MinBackoff
	var lastWarn time.Time
	hops := 0
	for {
		start := time.Now()
		received, err := s.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if s.cfg.Targets != nil {
			if moved, toLeader := s.cfg.Targets.Follow(err); moved && toLeader && hops < 3 {
				hops++ // to the leader a follower named: at once, unless followers send it round in circles
				continue
			}
		}
		hops = 0
		if received || time.Since(start) > s.cfg.MaxBackoff {
			backoff = s.cfg.MinBackoff
			lastWarn = time.Time{}
		}
		if time.Since(lastWarn) >= time.Minute { // not one line per attempt
			lastWarn = time.Now()
			s.cfg.Log.Warn("no session with the controller; reconnecting with backoff", "error", err, "in", backoff)
		} else {
			s.cfg.Log.Debug("no session with the controller; reconnecting", "error", err, "in", backoff)
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		backoff = min(2*backoff, s.cfg.MaxBackoff)
	}
}

// session runs one session; received says whether any command arrived.
func (s *Session) session(ctx context.Context) (received bool, err error) {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := s.client.Connect(sctx)
	if err != nil {
		return false, err
	}
	apps, err := s.cfg.Handler.Status()
	if err != nil {
		return false, fmt.Errorf("read own status: %w", err)
	}
	hello := &cutoverv1.AgentHello{Name: s.cfg.Name, Environment: s.cfg.Environment, Labels: s.cfg.Labels, Status: statusToProto(apps),
		Revision: Revision, PeerAddress: s.cfg.PeerAddress}
	if s.cfg.Targets != nil {
		hello.UnreachableController = s.cfg.Targets.Unreachable()
	}
	if err := stream.Send(&cutoverv1.ConnectRequest{Msg: &cutoverv1.ConnectRequest_Hello{Hello: hello}}); err != nil {
		return false, err
	}
	s.mu.Lock()
	s.stream = stream
	s.sessions++
	s.mu.Unlock()
	s.metrics.connected.Set(1)
	defer func() {
		s.mu.Lock()
		if s.stream == stream {
			s.stream = nil
		}
		s.mu.Unlock()
		s.metrics.connected.Set(0)
	}()
	s.cfg.Log.Info("connected to the controller")
	go s.reportStatus(sctx, statusToProto(apps))
	for {
		msg, err := stream.Recv()
		if err != nil {
			return received, err
		}
		received = true
		cmd, ok := commandFromProto(msg)
		if !ok {
			s.cfg.Log.Warn("unknown command from the controller ignored; is the agent older than the controller?")
			continue
		}
		if err := s.admit(cmd); err != nil {
			return received, err
		}
		s.start(ctx, cmd)
	}
}

// admit checks cmd's epoch against the Fence. A refused command is
// answered FAILED (a finish has no answer) and ends the session: its
// controller lost its leadership, and the agent looks for the leader.
func (s *Session) admit(cmd Command) error {
	if s.cfg.Fence == nil {
		return nil
	}
	ok, highest, err := s.cfg.Fence.AdmitEpoch(cmd.Epoch)
	if err != nil {
		return fmt.Errorf("record the controller's epoch %d: %w", cmd.Epoch, err)
	}
	if ok {
		return nil
	}
	s.metrics.fenced.Inc()
	err = fmt.Errorf("command %s (%s) refused: it comes from a controller at epoch %d, but a leader at epoch %d has commanded this agent since; the sender lost its leadership",
		cmd.ID, cmd.Kind, cmd.Epoch, highest)
	s.cfg.Log.Warn("command from a former leader refused", "command", cmd.ID, "kind", string(cmd.Kind), "epoch", cmd.Epoch, "highest_epoch", highest)
	if cmd.Kind != KindFinish {
		s.send(reportToProto(Report{CommandID: cmd.ID, Deployment: cmd.Deployment, RollbackAttempt: cmd.RollbackAttempt, Outcome: Failed, Error: err.Error()}))
	}
	return err
}

// reportStatus sends the agent's status every StatusEvery when it differs
// from the last one seen (sent), until ctx (the session) ends.
func (s *Session) reportStatus(ctx context.Context, last *cutoverv1.AgentStatus) {
	t := time.NewTicker(s.cfg.StatusEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		apps, err := s.cfg.Handler.Status()
		if err != nil {
			s.cfg.Log.Warn("read own status", "error", err)
			continue
		}
		if st := statusToProto(apps); !proto.Equal(st, last) {
			last = st
			s.send(&cutoverv1.ConnectRequest{Msg: &cutoverv1.ConnectRequest_Status{Status: st}})
		}
	}
}

// Connected reports whether a session is open, and how many were opened.
func (s *Session) Connected() (bool, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stream != nil, s.sessions
}

// start runs cmd in its own goroutine, unless the same command already runs
// (a resend after a reconnection): that one will report on the new session.
// Each run's reports carry a run id of their own, so the controller can add
// up what successive runs of one command transferred (each counts from 0).
func (s *Session) start(ctx context.Context, cmd Command) {
	if cmd.Kind == KindFinish { // a signal to a running commit: no run, no report
		s.cfg.Handler.Handle(ctx, cmd, func(Report) {})
		return
	}
	s.mu.Lock()
	if s.inflight[cmd.ID] {
		s.mu.Unlock()
		s.cfg.Log.Debug("command already running", "command", cmd.ID, logging.KeyDeployment, cmd.Deployment)
		return
	}
	s.inflight[cmd.ID] = true
	s.mu.Unlock()
	run := fmt.Sprintf("%016x", rand.Uint64())
	s.wg.Go(func() {
		ended := sync.OnceFunc(func() {
			s.mu.Lock()
			delete(s.inflight, cmd.ID)
			s.mu.Unlock()
		})
		defer ended()
		log := s.cfg.Log.With(logging.KeyDeployment, cmd.Deployment, "command", cmd.ID, "kind", string(cmd.Kind))
		log.Info("command received")
		var last time.Time
		final := s.cfg.Handler.Handle(ctx, cmd, func(r Report) {
			if now := time.Now(); now.Sub(last) >= progressEvery || r.Ready {
				last = now
				r.Run = run
				s.send(reportToProto(r))
			}
		})
		final.Run = run
		if apps, err := s.cfg.Handler.Status(); err == nil {
			s.send(&cutoverv1.ConnectRequest{Msg: &cutoverv1.ConnectRequest_Status{Status: statusToProto(apps)}})
		} else {
			log.Error("read own status", "error", err)
		}
		// The run is over before its result goes out: the same command
		// sent again once the result is seen starts a new run, instead of
		// being taken for a resend of this one.
		ended()
		if !s.send(reportToProto(final)) {
			log.Warn("result not sent: no session; the controller resends the command when the agent reconnects")
		}
		if final.Outcome == Failed {
			s.metrics.commands.WithLabelValues(string(cmd.Kind), "failed").Inc()
			log.Warn("command failed", "error", final.Error)
		} else {
			s.metrics.commands.WithLabelValues(string(cmd.Kind), "done").Inc()
			log.Info("command done")
		}
	})
}

// send sends msg on the current session; false if there is none or it failed.
func (s *Session) send(msg *cutoverv1.ConnectRequest) bool {
	s.mu.Lock()
	stream := s.stream
	s.mu.Unlock()
	if stream == nil {
		return false
	}
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	if err := stream.Send(msg); err != nil {
		s.cfg.Log.Debug("send to the controller failed", "error", err)
		return false
	}
	return true
}
