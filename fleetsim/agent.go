package fleetsim

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"

	"github.com/cutover-dev/cutover/agent/activate"
	"github.com/cutover-dev/cutover/agent/identity"
	"github.com/cutover-dev/cutover/agent/peer"
	"github.com/cutover-dev/cutover/agent/session"
	"github.com/cutover-dev/cutover/agent/stage"
	"github.com/cutover-dev/cutover/agent/store"
	"github.com/cutover-dev/cutover/pkg/logging"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
	"github.com/prometheus/client_golang/prometheus"
)

// Per-connection buffers of a simulated agent. The real agent (session.Dial)
// reads with a 256 KiB buffer and an 8 MiB window so that a large release
// streams fast; thousands of those in one process would cost the simulator
// gigabytes for nothing, since the simulator stages releases of a few KiB.
// The controller's side of each connection is untouched by this choice.
const (
	simReadBuffer  = 32 << 10
	simWriteBuffer = 32 << 10
	// simPeerWindow is each peer fetch's flow-control window (the real
	// agent's is 8 MiB): fifty agents fetching from a dozen peers each
	// would otherwise let gigabytes wait in buffers.
	simPeerWindow = 1 << 20
)

// agent is one simulated agent: the real agent's identity, store, stager,
// activator and session, with a no-op process supervisor.
type agent struct {
	name    string
	log     *slog.Logger
	idCfg   identity.Config
	addr    string
	id      *identity.Identity
	store   *store.Store
	conn    *grpc.ClientConn
	stager  *stage.Stager
	act     *activate.Activator
	session *session.Session
	ready   atomic.Bool // start returned without error: the fields are set
	stages  chan struct{}

	// With Config.Peers: the agent's own metrics, its peer source and
	// the listener its peer server serves on.
	reg     *prometheus.Registry
	peers   *peer.Source
	peerLis net.Listener
	held    peer.Held
}

// newAgent describes agent name; start enrolls and opens it. stages, if
// not nil, limits how many agents stage at once (Config.StageConcurrency).
func newAgent(cfg *Config, name string, stages chan struct{}) *agent {
	log := cfg.Log.With(logging.KeyAgent, name, logging.KeyEnvironment, cfg.Environment)
	dir := filepath.Join(cfg.DataDir, name)
	return &agent{name: name, log: log, addr: cfg.Controller, stages: stages,
		idCfg: identity.Config{Dir: filepath.Join(dir, "tls"), Environment: cfg.Environment, Name: name,
			JoinTokenFile: cfg.JoinTokenFile, CAFile: cfg.CAFile, Log: log}}
}

// start enrolls the agent (unless its data dir holds an identity), opens
// its store, builds its parts, recovers what a previous run left (as the
// real agent does at start) and waits until its connection to the
// controller is ready: one TLS handshake done, the next agent may start.
func (a *agent) start(ctx context.Context, cfg *Config) error {
	if err := a.enroll(ctx); err != nil {
		return err
	}
	dir := filepath.Join(cfg.DataDir, a.name)
	root := filepath.Join(dir, "root")
	var err error
	if a.store, err = store.Open(filepath.Join(dir, "data")); err != nil {
		return err
	}
	if a.conn, err = dial(cfg.Controller, a.id.ClientTLSConfig()); err != nil {
		return err
	}
	if a.act, err = activate.New(activate.Config{Store: a.store, Root: root, Processes: newNoProcesses(), Log: a.log}); err != nil {
		return err
	}
	var src stage.Source = session.NewSource(a.conn, cfg.Environment, a.name)
	runner := &session.Runner{Activator: a.act, Root: root}
	advertise := ""
	if cfg.Peers {
		if advertise, err = a.openPeers(src); err != nil {
			return err
		}
		src, runner.Peers = a.peers, a.peers
	}
	var reg prometheus.Registerer // nil: not registered
	if a.reg != nil {
		reg = a.reg
	}
	if a.stager, err = stage.New(stage.Config{Store: a.store, Root: root, Log: a.log, Source: src, Registerer: reg}); err != nil {
		return err
	}
	runner.Stager = a.stager
	a.held = a.stager
	if cfg.Peers && cfg.WrapHeld != nil {
		a.held = cfg.WrapHeld(a.name, a.stager)
	}
	var handler session.Handler = runner
	if a.stages != nil {
		handler = turns{Handler: runner, stages: a.stages}
	}
	if a.session, err = session.New(session.Config{Conn: a.conn, Name: a.name, Environment: cfg.Environment,
		Labels: cfg.Labels, PeerAddress: advertise, Log: a.log, Fence: a.store, Handler: handler}); err != nil {
		return err
	}
	if err := a.act.Recover(); err != nil {
		return err
	}
	if err := a.stager.Clean(); err != nil {
		return err
	}
	if err := a.act.StartAll(ctx); err != nil {
		return err
	}
	if err := waitReady(ctx, a.conn); err != nil {
		return err
	}
	a.ready.Store(true)
	return nil
}

// openPeers makes the agent's peer source over controller, with metrics
// of its own, and its listener on a loopback port; it returns the address
// to advertise.
func (a *agent) openPeers(controller stage.Source) (string, error) {
	a.reg = prometheus.NewRegistry()
	var err error
	if a.peers, err = peer.NewSource(peer.Config{Identity: func() peer.Identity { return a.id }, Controller: controller,
		Log: a.log, Registerer: a.reg, Window: simPeerWindow}); err != nil {
		return "", err
	}
	if a.peerLis, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		return "", err
	}
	return a.peerLis.Addr().String(), nil
}

// run keeps the agent's session (and renews its certificate, and serves
// its peers) until ctx ends.
func (a *agent) run(ctx context.Context) error {
	renew, served := make(chan error, 1), make(chan error, 1)
	rctx, cancel := context.WithCancel(ctx)
	go func() { renew <- a.id.Run(rctx, cutoverv1.NewAgentServiceClient(a.conn)) }()
	if a.peerLis != nil {
		go func() { served <- a.peers.Server(a.held).Serve(rctx, a.peerLis) }()
	} else {
		served <- nil
	}
	err := a.session.Run(ctx)
	cancel()
	return errors.Join(err, <-renew, <-served)
}

// connected says whether the agent's session is open.
func (a *agent) connected() bool {
	if !a.ready.Load() {
		return false
	}
	ok, _ := a.session.Connected()
	return ok
}

// close closes the agent's connection and store.
func (a *agent) close() error {
	var errs []error
	if a.peers != nil {
		errs = append(errs, a.peers.Close())
	}
	if a.peerLis != nil {
		_ = a.peerLis.Close() // closed by the peer server if it ran
	}
	if a.conn != nil {
		errs = append(errs, a.conn.Close())
	}
	if a.store != nil {
		errs = append(errs, a.store.Close())
	}
	return errors.Join(errs...)
}

// enroll loads the agent's identity, or enrolls with the join token,
// retrying while the controller is unavailable, as the real agent does.
func (a *agent) enroll(ctx context.Context) error {
	id, err := identity.LoadOrEnrollRetrying(ctx, a.idCfg, []string{a.addr}, session.DefaultMinBackoff, session.DefaultMaxBackoff)
	if err != nil {
		if ctx.Err() != nil {
			return err
		}
		return fmt.Errorf("agent %s: %w", a.name, err)
	}
	a.id = id
	return nil
}

// dial is session.Dial (same TLS, backoff and keepalive) with the
// simulator's small buffers and gRPC's default flow-control windows.
func dial(addr string, conf *tls.Config) (*grpc.ClientConn, error) {
	opts := append(session.DialOptions(conf), grpc.WithReadBufferSize(simReadBuffer), grpc.WithWriteBufferSize(simWriteBuffer))
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("controller address %q: %w", addr, err)
	}
	return conn, nil
}

// waitReady connects conn and waits, on its state changes, until it is
// ready or ctx ends. A connection that drops goes back to idle and stays
// there until asked: each idle is asked to connect again (at 10,000
// agents, one whose first connection was cut right after its handshake
// waited forever, idle, without a line in the log).
func waitReady(ctx context.Context, conn *grpc.ClientConn) error {
	for {
		s := conn.GetState()
		switch s {
		case connectivity.Ready:
			return nil
		case connectivity.Idle:
			conn.Connect()
		}
		if !conn.WaitForStateChange(ctx, s) {
			return ctx.Err()
		}
	}
}

// turns is a session.Handler whose stage commands wait for one of the
// process's stage turns (Config.StageConcurrency).
type turns struct {
	session.Handler
	stages chan struct{}
}

// Handle runs cmd, a stage command once it has a turn.
func (t turns) Handle(ctx context.Context, cmd session.Command, progress func(session.Report)) session.Report {
	if cmd.Kind == session.KindStage {
		select {
		case t.stages <- struct{}{}:
			defer func() { <-t.stages }()
		case <-ctx.Done(): // the handler fails at once on ctx
		}
	}
	return t.Handler.Handle(ctx, cmd, progress)
}
