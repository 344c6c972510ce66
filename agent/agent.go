// Package agent wires cutover-agent together: the store, the process
// supervisor, staging, activation, the session with the controller and the
// /metrics endpoint. It holds no rules of its own.
package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"

	"github.com/cutover-dev/cutover/agent/activate"
	"github.com/cutover-dev/cutover/agent/identity"
	"github.com/cutover-dev/cutover/agent/peer"
	"github.com/cutover-dev/cutover/agent/process"
	"github.com/cutover-dev/cutover/agent/session"
	"github.com/cutover-dev/cutover/agent/stage"
	"github.com/cutover-dev/cutover/agent/store"
	"github.com/cutover-dev/cutover/pkg/appspec"
	"github.com/cutover-dev/cutover/pkg/errkind"
	"github.com/cutover-dev/cutover/pkg/logging"
	"github.com/cutover-dev/cutover/pkg/pprofserve"
	"github.com/cutover-dev/cutover/pkg/sdnotify"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// DefaultController is the controller address when Config.Controller is empty.
const DefaultController = "127.0.0.1:7070"

// Config is the agent's configuration (the flags of cutover-agent).
type Config struct {
	// Controller is the controller's gRPC address, or the addresses of
	// the controllers sharing one etcd, comma-separated: the agent keeps a
	// session with whichever leads (session.Targets).
	Controller string
	// Environment is the environment the agent serves (required).
	Environment string
	// Name is the agent's name; empty: the host name (up to its first dot).
	Name string
	// DataDir holds agent.db and logs/ (required).
	DataDir string
	// Root holds ROOT/<app>/releases/ and ROOT/<app>/current (required).
	Root string
	// Env is given to every app process, and expands ${VAR} in health URLs.
	Env map[string]string
	// Labels go into the hello.
	Labels map[string]string
	// MetricsListen is the address of /metrics; empty: off.
	MetricsListen string
	// PprofListen, if set, serves Go's runtime profiles (pkg/pprofserve)
	// over HTTP on this loopback address. Off by default.
	PprofListen string
	// JoinTokenFile holds the join token the agent enrolls with when it has
	// no certificate yet (DataDir/tls); not needed once enrolled.
	JoinTokenFile string
	// CAFile, if set, is the controller's CA certificate; without it the
	// join token's CA hash identifies the controller.
	CAFile string
	// Log receives the agent's log; nil: discarded.
	Log *slog.Logger
	// Registerer receives the metrics; nil: a new registry with the Go and
	// process collectors, served on /metrics.
	Registerer prometheus.Registerer
	// Clock returns the time; nil: time.Now.
	Clock func() time.Time
	// MemoryLimit is the Go runtime's soft memory limit that Run sets, in
	// bytes (0: DefaultMemoryLimit; negative: none). The GOMEMLIMIT
	// environment variable, when set, wins.
	MemoryLimit int64
	// StageRate caps how fast each stage writes, in bytes per second; an
	// environment's stage_rate lowers it. 0: no cap.
	StageRate int64
	// PeerListen, if set, is where the agent serves the chunks it holds to
	// the agents of its environment (agent/peer; mutual TLS with its
	// certificate). Empty: it serves none (it still fetches from peers).
	PeerListen string
	// PeerAdvertise is the address the other agents dial to reach
	// PeerListen; default PeerListen's (its port chosen if 0), which must
	// then name a host.
	PeerAdvertise string
}

// DefaultMemoryLimit keeps the agent's heap small while it receives a
// release: the garbage collector runs harder instead of letting the heap
// grow to twice what is live. Staging holds about 40 MiB at most.
const DefaultMemoryLimit = 64 << 20

// Agent is a configured cutover-agent.
type Agent struct {
	cfg       Config
	gatherer  prometheus.Gatherer
	store     *store.Store
	conn      *grpc.ClientConn
	targets   *session.Targets
	idCfg     identity.Config
	id        atomic.Pointer[identity.Identity] // nil until enrolled
	procs     *process.Supervisor
	activator *activate.Activator
	stager    *stage.Stager
	session   *session.Session
	peers     *peer.Source
	peerLis   net.Listener // nil: no --peer-listen
}

// New checks cfg, opens the store and builds the agent's parts. Errors are
// errkind.InvalidArgument for a bad Config; the store's for a data dir in use.
func New(cfg Config) (*Agent, error) {
	if err := fillDefaults(&cfg); err != nil {
		return nil, err
	}
	a := &Agent{cfg: cfg}
	if reg, ok := cfg.Registerer.(prometheus.Gatherer); ok {
		a.gatherer = reg
	}
	if cfg.Registerer == nil {
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		a.cfg.Registerer, a.gatherer = reg, reg
	}
	if err := os.MkdirAll(cfg.Root, 0o755); err != nil {
		return nil, fmt.Errorf("create --root %s: %w", cfg.Root, err)
	}
	a.idCfg = identity.Config{Dir: filepath.Join(cfg.DataDir, "tls"), Environment: cfg.Environment, Name: cfg.Name,
		JoinTokenFile: cfg.JoinTokenFile, CAFile: cfg.CAFile, Clock: cfg.Clock, Log: cfg.Log}
	switch id, err := identity.Load(a.idCfg); {
	case err == nil:
		a.id.Store(id)
	case errors.Is(err, identity.ErrNotEnrolled) && cfg.JoinTokenFile == "":
		return nil, fmt.Errorf("this agent has no certificate yet (%s): give --join-token-file with a token from `cutoverctl agent token create --environment %s`: %w",
			a.idCfg.Dir, cfg.Environment, errkind.InvalidArgument)
	case errors.Is(err, identity.ErrNotEnrolled), errors.Is(err, identity.ErrExpired) && cfg.JoinTokenFile != "":
		// Run enrolls, once the controller answers.
	default:
		return nil, err
	}
	var err error
	if a.store, err = store.Open(cfg.DataDir); err != nil {
		return nil, err
	}
	if err := a.build(); err != nil {
		_ = a.close()
		return nil, err
	}
	return a, nil
}

func (a *Agent) build() error {
	cfg := a.cfg
	var err error
	if a.targets, err = session.NewTargets(cfg.Controller, cfg.Log); err != nil {
		return fmt.Errorf("--controller: %w", err)
	}
	if a.conn, err = session.DialTargets(a.targets, a.tlsConfig()); err != nil {
		return fmt.Errorf("--controller: %w: %w", err, errkind.InvalidArgument)
	}
	a.procs = process.New(process.Config{Log: cfg.Log, Env: cfg.Env, LogDir: filepath.Join(cfg.DataDir, "logs"), RunDir: filepath.Join(cfg.DataDir, "run")})
	a.activator, err = activate.New(activate.Config{Store: a.store, Root: cfg.Root, Processes: a.procs,
		Env: cfg.Env, Log: cfg.Log, Registerer: cfg.Registerer, Clock: cfg.Clock})
	if err != nil {
		return err
	}
	if a.peers, err = peer.NewSource(peer.Config{Identity: a.peerIdentity, Controller: session.NewSource(a.conn, cfg.Environment, cfg.Name),
		Log: cfg.Log, Registerer: cfg.Registerer}); err != nil {
		return err
	}
	stager, err := stage.New(stage.Config{Store: a.store, Root: cfg.Root, Source: a.peers,
		Log: cfg.Log, Registerer: cfg.Registerer, Clock: cfg.Clock, Rate: cfg.StageRate})
	if err != nil {
		return err
	}
	a.stager = stager
	advertise, err := a.listenPeers()
	if err != nil {
		return err
	}
	a.session, err = session.New(session.Config{Conn: a.conn, Name: cfg.Name, Environment: cfg.Environment,
		Labels: cfg.Labels, PeerAddress: advertise, Log: cfg.Log, Registerer: cfg.Registerer, Fence: a.store, Targets: a.targets,
		Handler: &session.Runner{Stager: stager, Activator: a.activator, Root: cfg.Root, Peers: a.peers}})
	return err
}

// listenPeers opens --peer-listen, if set, and returns the address the
// agent advertises to its peers ("" when it serves none).
func (a *Agent) listenPeers() (string, error) {
	if a.cfg.PeerListen == "" {
		return "", nil
	}
	lis, err := net.Listen("tcp", a.cfg.PeerListen)
	if err != nil {
		return "", fmt.Errorf("--peer-listen %s: %w", a.cfg.PeerListen, err)
	}
	a.peerLis = lis
	if a.cfg.PeerAdvertise != "" {
		return a.cfg.PeerAdvertise, nil
	}
	if host, _, _ := net.SplitHostPort(a.cfg.PeerListen); host == "" || net.ParseIP(host).IsUnspecified() {
		return "", fmt.Errorf("--peer-listen %s listens on every address: give --peer-advertise HOST:PORT, the address the other agents dial: %w", a.cfg.PeerListen, errkind.InvalidArgument)
	}
	return lis.Addr().String(), nil
}

// peerIdentity is the agent's identity for its peers; nil until enrolled.
func (a *Agent) peerIdentity() peer.Identity {
	if id := a.id.Load(); id != nil {
		return id
	}
	return nil
}

func fillDefaults(cfg *Config) error {
	if cfg.Controller == "" {
		cfg.Controller = DefaultController
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Name == "" {
		host, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("no --name given and the host name is unknown (%v); give --name: %w", err, errkind.InvalidArgument)
		}
		cfg.Name, _, _ = strings.Cut(strings.ToLower(host), ".")
	}
	var problems []error
	if cfg.Environment == "" {
		problems = append(problems, errors.New("--environment is required"))
	} else if err := appspec.ValidName(cfg.Environment); err != nil {
		problems = append(problems, fmt.Errorf("--environment: %w", err))
	}
	if err := appspec.ValidName(cfg.Name); err != nil {
		problems = append(problems, fmt.Errorf("--name: %w", err))
	}
	if cfg.DataDir == "" {
		problems = append(problems, errors.New("--data-dir is required"))
	}
	if cfg.Root == "" {
		problems = append(problems, errors.New("--root is required"))
	}
	for _, dir := range []*string{&cfg.DataDir, &cfg.Root} {
		if *dir == "" {
			continue
		}
		abs, err := filepath.Abs(*dir)
		if err != nil {
			problems = append(problems, err)
			continue
		}
		*dir = abs // the apps run elsewhere: no path may depend on the agent's cwd
	}
	if len(problems) > 0 {
		msgs := make([]string, len(problems))
		for i, p := range problems {
			msgs[i] = p.Error()
		}
		return fmt.Errorf("%s: %w", strings.Join(msgs, "; "), errkind.InvalidArgument)
	}
	cfg.Log = cfg.Log.With(logging.KeyAgent, cfg.Name, logging.KeyEnvironment, cfg.Environment)
	return nil
}

// Run recovers an activation a crash interrupted, adopts the app processes
// the previous agent left running, starts the apps whose `current` exists
// and that do not run, keeps the session with the controller and serves
// /metrics, until ctx ends. It then waits for running commands, leaves the
// apps running (the next agent adopts them: process.Supervisor.Detach) and
// closes the store.
func (a *Agent) Run(ctx context.Context) (err error) {
	defer func() {
		_ = sdnotify.Stopping()
		a.procs.Detach()
		err = errors.Join(err, a.close())
		a.cfg.Log.Info("agent stopped")
	}()
	if lim := a.cfg.MemoryLimit; lim >= 0 && os.Getenv("GOMEMLIMIT") == "" {
		if lim == 0 {
			lim = DefaultMemoryLimit
		}
		debug.SetMemoryLimit(lim)
	}
	if err := a.activator.Recover(); err != nil {
		return err
	}
	if err := a.stager.Clean(); err != nil {
		return err
	}
	adopted, err := a.procs.Adopt(ctx)
	if err != nil {
		return err
	}
	if len(adopted) > 0 {
		a.cfg.Log.Info("app processes adopted", "applications", adopted)
	}
	if err := a.activator.StartAll(ctx); err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	if a.cfg.MetricsListen != "" {
		lis, err := net.Listen("tcp", a.cfg.MetricsListen)
		if err != nil {
			return fmt.Errorf("--metrics-listen %s: %w", a.cfg.MetricsListen, err)
		}
		g.Go(func() error { return a.serveMetrics(gctx, lis) })
	}
	if a.cfg.PprofListen != "" {
		lis, err := pprofserve.Listen(a.cfg.PprofListen)
		if err != nil {
			return fmt.Errorf("--pprof-listen: %w", err)
		}
		g.Go(func() error { return pprofserve.Serve(gctx, lis) })
	}
	g.Go(func() error {
		// The apps run and the agent is ready while it waits to enroll.
		if err := a.enroll(gctx); err != nil || a.id.Load() == nil { // not enrolled: stopped while waiting
			return err
		}
		g.Go(func() error { return a.id.Load().Run(gctx, cutoverv1.NewAgentServiceClient(a.conn)) })
		return a.session.Run(gctx)
	})
	if a.peerLis != nil {
		g.Go(func() error { return a.peers.Server(a.stager).Serve(gctx, a.peerLis) })
	}
	g.Go(func() error { return sdnotify.Watchdog(gctx) })
	a.cfg.Log.Info("agent started", "controller", a.cfg.Controller, "root", a.cfg.Root, "data_dir", a.cfg.DataDir)
	_ = sdnotify.Ready()
	return g.Wait()
}

// tlsConfig is the session's TLS configuration: the agent's current
// certificate (renewed in place) and the check that the server is the
// controller, both read from the identity at each handshake.
func (a *Agent) tlsConfig() *tls.Config {
	notYet := errors.New("the agent is not enrolled yet")
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		InsecureSkipVerify: true, // replaced by VerifyConnection: the controller's CA and cutover://controller, not a host name
		GetClientCertificate: func(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if id := a.id.Load(); id != nil {
				return id.ClientTLSConfig().GetClientCertificate(cri)
			}
			return nil, notYet
		},
		VerifyConnection: func(cs tls.ConnectionState) error {
			if id := a.id.Load(); id != nil {
				return id.ClientTLSConfig().VerifyConnection(cs)
			}
			return notYet
		},
	}
}

// enroll gets the agent's first certificate with its join token unless it
// has one, retrying while the controller cannot be reached. A refused
// token ends the agent: it needs a new one.
func (a *Agent) enroll(ctx context.Context) error {
	if a.id.Load() != nil {
		return nil
	}
	id, err := identity.LoadOrEnrollRetrying(ctx, a.idCfg, a.targets.Addrs(), session.DefaultMinBackoff, session.DefaultMaxBackoff)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	a.id.Store(id)
	a.cfg.Log.Info("enrolled", "identity", id.Agent().URI(), "not_after", id.NotAfter())
	return nil
}

func (a *Agent) serveMetrics(ctx context.Context, lis net.Listener) error {
	mux := http.NewServeMux()
	if a.gatherer != nil {
		mux.Handle("/metrics", promhttp.HandlerFor(a.gatherer, promhttp.HandlerOpts{}))
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shut)
	}()
	if err := srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve /metrics: %w", err)
	}
	return nil
}

func (a *Agent) close() error {
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
