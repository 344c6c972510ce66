// Package controlplane wires the controller together: it opens the store,
// builds the fleet, the catalog, the deployment service and the two gRPC
// services, serves them (and /metrics), and runs the long-running parts
// together until the context ends. It holds no business rules.
package controlplane

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
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	clientv3 "go.etcd.io/etcd/client/v3"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"

	"github.com/cutover-dev/cutover/controlplane/adminapi"
	"github.com/cutover-dev/cutover/controlplane/agentapi"
	"github.com/cutover-dev/cutover/controlplane/audit"
	"github.com/cutover-dev/cutover/controlplane/auth"
	"github.com/cutover-dev/cutover/controlplane/build"
	"github.com/cutover-dev/cutover/controlplane/catalog"
	"github.com/cutover-dev/cutover/controlplane/console"
	"github.com/cutover-dev/cutover/controlplane/deployment"
	"github.com/cutover-dev/cutover/controlplane/etcdstore"
	"github.com/cutover-dev/cutover/controlplane/fleet"
	"github.com/cutover-dev/cutover/controlplane/guard"
	"github.com/cutover-dev/cutover/controlplane/migrate"
	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/controlplane/pki"
	"github.com/cutover-dev/cutover/controlplane/sourceroot"
	"github.com/cutover-dev/cutover/controlplane/store"
	"github.com/cutover-dev/cutover/controlplane/transfer"
	"github.com/cutover-dev/cutover/pkg/identity"
	"github.com/cutover-dev/cutover/pkg/pprofserve"
	"github.com/cutover-dev/cutover/pkg/sdnotify"
)

// Config is the controller's configuration.
type Config struct {
	// DataDir holds controller.db and the build scratch directory. Required.
	DataDir string
	// Listen is the gRPC address (AdminService and AgentService).
	Listen string
	// MetricsListen, if set, serves /metrics over HTTP.
	MetricsListen string
	// PprofListen, if set, serves Go's runtime profiles (pkg/pprofserve)
	// over HTTP on this loopback address. Off by default.
	PprofListen string
	// ConsoleListen, if set, serves the web console (controlplane/console)
	// over HTTPS with the controller's serving certificate.
	ConsoleListen string
	Log           *slog.Logger
	// Registerer receives the metrics; nil means a new registry with the Go
	// and process collectors. /metrics serves it if it is also a Gatherer.
	Registerer prometheus.Registerer
	Clock      func() time.Time
	// BuildTimeout bounds a build whose app spec sets no timeout.
	BuildTimeout time.Duration
	// SQLTimeout bounds generating a deployment's SQL script (prepare) and
	// running it (continue); 0 means deployment.DefaultSQLTimeout.
	SQLTimeout time.Duration
	// StopTimeout bounds the graceful stop before a hard stop; default 10s.
	StopTimeout time.Duration
	// KeepReleases is how many releases per application the store keeps
	// beyond those an environment runs or a deployment needs; default
	// DefaultKeepReleases.
	KeepReleases int
	// CollectEvery is how often releases and chunks that nothing needs any
	// more are deleted (and once at start); default 5 minutes.
	CollectEvery time.Duration
	// SourceRoots are the directories application sources may live under;
	// default DataDir/sources.
	SourceRoots []string
	// TLSCACert and TLSCAKey name a CA to use instead of the one the
	// controller creates in DataDir/tls; both or neither.
	TLSCACert, TLSCAKey string
	// TLSSANs are extra host names or addresses of the serving certificate
	// (the host of Listen, localhost and 127.0.0.1 are always in it).
	TLSSANs []string
	// ServingCertTTL is the serving certificate's lifetime (renewed after
	// two thirds of it); default pki.DefaultServingTTL.
	ServingCertTTL time.Duration
	// AgentCertTTL is the lifetime of agents' certificates (they renew
	// after two thirds of it); default auth.DefaultAgentCertTTL.
	AgentCertTTL time.Duration
	// Store is where the records live: StoreBolt (default; DataDir's
	// controller.db) or StoreEtcd (Etcd; release chunks stay in
	// controller.db).
	Store string
	// Etcd says how to reach etcd when Store is StoreEtcd.
	Etcd EtcdConfig
	// Advertise is the address other controllers, agents and operators
	// reach this controller at, announced when it leads (etcd only);
	// default the host and port of Listen (the host name for a wildcard).
	Advertise string
	// MaxEgress caps the release chunk data the controller sends, to
	// agents and to follower controllers together, in bytes per second
	// (a token bucket whose burst is one batch, about 1 MiB); 0: no cap.
	MaxEgress int64
	// LeaderTTL is the lifetime of the leader's lease (etcd only): a
	// leader that died is replaced within about this time; default
	// leader.DefaultTTL.
	LeaderTTL time.Duration
}

// BootstrapTokenFile is the file in the data directory that holds the
// first admin token, written on first start.
const BootstrapTokenFile = "bootstrap.token"

// DefaultKeepReleases is the default of Config.KeepReleases.
const DefaultKeepReleases = 3

// DefaultListen is the default gRPC address.
const DefaultListen = "127.0.0.1:7070"

// Controller is a running controller.
type Controller struct {
	cfg        Config
	log        *slog.Logger
	store      model.Store
	bolt       *store.Store // controller.db: every record, or only the chunks on etcd
	etcd       *clientv3.Client
	etcdStore  *etcdstore.Store
	fleet      *fleet.Fleet
	deps       *deployment.Service
	role       *role // nil with bbolt
	pki        *pki.Authority
	grpc       *grpc.Server
	health     *health.Server
	lis        net.Listener
	metrics    *http.Server
	metricsLis net.Listener
	pprofLis   net.Listener
	console    *console.Console
	consoleSrv *http.Server
	consoleLis net.Listener
	stopping   context.Context
	stop       context.CancelFunc
}

// New opens the store and binds the listeners; nothing is served until Run.
func New(cfg Config) (_ *Controller, err error) {
	if cfg.DataDir == "" {
		return nil, errors.New("the data directory is required (--data-dir)")
	}
	if cfg.Listen == "" {
		cfg.Listen = DefaultListen
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = 10 * time.Second
	}
	if cfg.KeepReleases <= 0 {
		cfg.KeepReleases = DefaultKeepReleases
	}
	if cfg.CollectEvery <= 0 {
		cfg.CollectEvery = 5 * time.Minute
	}
	if cfg.Registerer == nil {
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		cfg.Registerer = reg
	}
	c := &Controller{cfg: cfg, log: cfg.Log}
	c.stopping, c.stop = context.WithCancel(context.Background())

	defer func() {
		if err != nil {
			c.close()
		}
	}()
	if err = c.openStore(cfg); err != nil {
		return nil, err
	}
	// Paths are made absolute: source directories are compared with them.
	if cfg.DataDir, err = filepath.Abs(cfg.DataDir); err != nil {
		return nil, fmt.Errorf("--data-dir: %w", err)
	}
	for i, root := range cfg.SourceRoots {
		if cfg.SourceRoots[i], err = filepath.Abs(root); err != nil {
			return nil, fmt.Errorf("--source-root: %w", err)
		}
	}
	if len(cfg.SourceRoots) == 0 {
		cfg.SourceRoots = []string{filepath.Join(cfg.DataDir, "sources")}
		if err := os.MkdirAll(cfg.SourceRoots[0], 0o755); err != nil {
			return nil, fmt.Errorf("create the default source root: %w", err)
		}
	}
	var shared pki.Shared // on etcd, the controllers share one CA
	if c.etcdStore != nil {
		shared = c.etcdStore
	}
	if c.pki, err = pki.Open(pki.Config{Dir: filepath.Join(cfg.DataDir, "tls"), CACertFile: cfg.TLSCACert, CAKeyFile: cfg.TLSCAKey, Shared: shared,
		Hosts: append(append(listenHosts(cfg.Listen), listenHosts(cfg.ConsoleListen)...), cfg.TLSSANs...), ServingTTL: cfg.ServingCertTTL, Log: cfg.Log}); err != nil { // certificates live in real time, whatever cfg.Clock says
		return nil, err
	}
	if c.role, err = c.newRole(cfg); err != nil {
		return nil, err
	}
	authn := auth.New(auth.Config{Store: c.store, Signer: c.pki, AgentCertTTL: cfg.AgentCertTTL, Clock: cfg.Clock, Log: cfg.Log})
	bootstrap := filepath.Join(cfg.DataDir, BootstrapTokenFile)
	if created, err := authn.Bootstrap(bootstrap); err != nil {
		return nil, err
	} else if created {
		cfg.Log.Warn("first start: an admin token was written to "+bootstrap+" (0600); use it to create named tokens (`cutoverctl token create`), then revoke it", "file", bootstrap)
	}
	scratch := filepath.Join(cfg.DataDir, "scratch")
	if err := os.RemoveAll(scratch); err != nil { // leftovers of builds cut short
		return nil, fmt.Errorf("clean build scratch dir: %w", err)
	}
	if c.fleet, err = fleet.New(fleet.Config{Store: c.store, Log: cfg.Log, Registerer: cfg.Registerer, Clock: cfg.Clock}); err != nil {
		return nil, err
	}
	sender, err := transfer.New(transfer.Config{Store: c.store, Log: cfg.Log, Registerer: cfg.Registerer, MaxEgress: cfg.MaxEgress})
	if err != nil {
		return nil, err
	}
	roots := sourceroot.Roots(cfg.SourceRoots)
	builder := build.New(build.Config{ScratchDir: scratch, Timeout: cfg.BuildTimeout, Log: cfg.Log, Sink: c.bolt, SourceRoots: roots})
	auditLog := audit.New(audit.Config{Store: c.store, Clock: cfg.Clock, Log: cfg.Log})
	c.deps, err = deployment.New(deployment.Config{Audit: auditLog, Store: c.store, Fleet: c.fleet, Builder: builder,
		Log: cfg.Log, Registerer: cfg.Registerer, Clock: cfg.Clock, SQLTimeout: cfg.SQLTimeout,
		Packager: builder, PackageDir: filepath.Join(cfg.DataDir, "packages"), Saved: sender.Saved,
		ShadowDir: filepath.Join(scratch, "shadow"), Epoch: c.role.Epoch, Copies: c.role.releaseCopies()})
	if err != nil {
		return nil, err
	}
	cat := catalog.New(catalog.Config{Store: c.store, Clock: cfg.Clock, SourceRoots: roots, CheckDatabase: migrate.CheckAccess})
	admin := adminapi.New(adminapi.Config{Audit: auditLog, Catalog: cat,
		Deployments: c.deps, Fleet: c.fleet, Auth: authn, Clock: cfg.Clock})
	agents := agentapi.New(agentapi.Config{Store: c.store, Fleet: c.fleet, Transfer: sender, Auth: authn, Log: cfg.Log,
		Epoch: c.role.Epoch, Leader: c.role.Leader, LeaderChanged: c.role.leaderChanged(), HoldFor: c.role.holdFor()})
	g := guard.New(guard.Config{Auth: authn, Resolver: c.deps, Audit: auditTo(auditLog), Log: cfg.Log})
	authn.OnRevoke(func(a identity.Agent, reason string) {
		g.Disconnect(a)
		c.fleet.Revoke(a.Name, reason)
	})
	rpcm, err := newRPCMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	c.grpc, c.health = newGRPCServer(cfg.Log, c.stopping, credentials.NewTLS(c.pki.ServerTLSConfig()), g, rpcm, c.role.forwarder(), admin, agents)

	if c.lis, err = net.Listen("tcp", cfg.Listen); err != nil {
		return nil, fmt.Errorf("listen on %s (--listen): %w", cfg.Listen, err)
	}
	if cfg.MetricsListen != "" {
		g, ok := cfg.Registerer.(prometheus.Gatherer)
		if !ok {
			return nil, errors.New("metrics: the registerer is not a gatherer, so /metrics cannot serve it")
		}
		if c.metricsLis, err = net.Listen("tcp", cfg.MetricsListen); err != nil {
			return nil, fmt.Errorf("listen on %s (--metrics-listen): %w", cfg.MetricsListen, err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
		c.metrics = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	}
	if cfg.PprofListen != "" {
		if c.pprofLis, err = pprofserve.Listen(cfg.PprofListen); err != nil {
			return nil, fmt.Errorf("--pprof-listen: %w", err)
		}
	}
	if cfg.ConsoleListen != "" {
		if c.consoleLis, err = net.Listen("tcp", cfg.ConsoleListen); err != nil {
			return nil, fmt.Errorf("listen on %s (--console-listen): %w", cfg.ConsoleListen, err)
		}
		c.console = console.New(console.Config{Catalog: cat, Deployments: c.deps, Fleet: c.fleet, Auth: authn,
			Audit: auditLog, Log: cfg.Log, Clock: cfg.Clock})
		// The console asks for no client certificate: people log in with
		// their operator token.
		tlsCfg := c.pki.ServerTLSConfig()
		tlsCfg.ClientAuth, tlsCfg.ClientCAs, tlsCfg.NextProtos = tls.NoClientCert, nil, []string{"h2", "http/1.1"}
		// No WriteTimeout: the deployment page's event stream stays open.
		c.consoleSrv = &http.Server{Handler: c.role.followerConsole(c.console), TLSConfig: tlsCfg, ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout: time.Minute, IdleTimeout: 2 * time.Minute, ErrorLog: slog.NewLogLogger(cfg.Log.Handler(), slog.LevelDebug)}
	}
	return c, nil
}

// listenHosts returns the host of a listen address for the serving
// certificate, unless it is a wildcard.
func listenHosts(listen string) []string {
	host, _, err := net.SplitHostPort(listen)
	if err != nil || host == "" || host == "0.0.0.0" || host == "::" {
		return nil
	}
	return []string{host}
}

// ConsoleAddr is the web console's address, or nil if it is not served.
func (c *Controller) ConsoleAddr() net.Addr {
	if c.consoleLis == nil {
		return nil
	}
	return c.consoleLis.Addr()
}

// Addr is the gRPC address the controller listens on.
func (c *Controller) Addr() net.Addr { return c.lis.Addr() }

// MetricsAddr is the /metrics address, or nil if metrics are not served.
func (c *Controller) MetricsAddr() net.Addr {
	if c.metricsLis == nil {
		return nil
	}
	return c.metricsLis.Addr()
}

// Run serves until ctx ends, then stops gracefully (hard after
// StopTimeout) and closes the store. The first part to fail stops the rest.
// Under systemd (NOTIFY_SOCKET set) it sends READY=1 once it serves,
// WATCHDOG=1 while the unit sets WatchdogSec=, and STOPPING=1 when it begins
// to stop.
func (c *Controller) Run(ctx context.Context) error {
	defer c.close()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return sdnotify.Watchdog(gctx) })
	if c.role != nil {
		g.Go(func() error { return c.role.run(gctx) })
		g.Go(func() error { return c.role.mirror.Run(gctx) })      // a follower's copy of the release chunks
		g.Go(func() error { c.role.follow.Run(gctx); return nil }) // who leads, for Leader
	} else {
		g.Go(func() error { return c.deps.Run(gctx) })
	}
	g.Go(func() error { return c.pki.Run(gctx) })
	if c.role == nil { // on etcd, the leader collects (role.run)
		g.Go(func() error { c.collect(gctx); return nil })
	}
	g.Go(func() error {
		c.log.Info("cutover-controller listening on "+c.lis.Addr().String()+" (TLS; CA certificate "+filepath.Join(c.cfg.DataDir, "tls", "ca.crt")+")", "data_dir", c.cfg.DataDir)
		// A stop that comes before Serve starts (a test that ends at once)
		// makes Serve return ErrServerStopped: that is a stop, not a failure.
		if err := c.grpc.Serve(c.lis); !errors.Is(err, grpc.ErrServerStopped) {
			return err
		}
		return nil
	})
	if c.metrics != nil {
		g.Go(func() error {
			c.log.Info("metrics on http://" + c.metricsLis.Addr().String() + "/metrics")
			if err := c.metrics.Serve(c.metricsLis); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("metrics server: %w", err)
			}
			return nil
		})
	}
	if c.pprofLis != nil {
		g.Go(func() error {
			c.log.Info("profiles on http://" + c.pprofLis.Addr().String() + "/debug/pprof/")
			return pprofserve.Serve(gctx, c.pprofLis)
		})
	}
	if c.consoleSrv != nil {
		g.Go(func() error {
			c.log.Info("web console on https://" + c.consoleLis.Addr().String() + "/")
			if err := c.consoleSrv.ServeTLS(c.consoleLis, "", ""); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("console server: %w", err)
			}
			return nil
		})
	}
	g.Go(func() error {
		<-gctx.Done()
		c.shutdown()
		return nil
	})
	// The listeners were bound in New: connections made from now on are
	// served as soon as Serve runs.
	if err := sdnotify.Ready(); err != nil {
		c.log.Warn("tell systemd READY=1", "err", err)
	}
	return g.Wait()
}

// collect deletes the releases and chunks that nothing needs any more, at
// start and then every CollectEvery, until ctx ends.
func (c *Controller) collect(ctx context.Context) {
	t := time.NewTicker(c.cfg.CollectEvery)
	defer t.Stop()
	for {
		got, err := c.collectGarbage()
		switch {
		case err != nil:
			c.log.Error("delete unneeded releases and chunks; nothing was deleted, the next round retries", "err", err)
		case got.Releases > 0 || got.Chunks > 0:
			c.log.Info("deleted unneeded releases and chunks", "releases", got.Releases, "chunks", got.Chunks, "bytes", got.ChunkBytes)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// shutdown ends the sessions and streams, then stops the gRPC server
// gracefully, and hard if that takes longer than StopTimeout.
func (c *Controller) shutdown() {
	c.log.Info("cutover-controller stopping")
	if err := sdnotify.Stopping(); err != nil {
		c.log.Warn("tell systemd STOPPING=1", "err", err)
	}
	c.health.Shutdown()
	c.stop()
	c.fleet.Close()
	done := make(chan struct{})
	go func() {
		c.grpc.GracefulStop()
		close(done)
	}()
	t := time.NewTimer(c.cfg.StopTimeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		c.log.Warn("graceful stop timed out; stopping hard", "timeout", c.cfg.StopTimeout)
		c.grpc.Stop()
	}
	if c.metrics != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = c.metrics.Shutdown(ctx)
	}
	if c.consoleSrv != nil {
		c.console.Stop() // ends the event streams, which never go idle
		ctx, cancel := context.WithTimeout(context.Background(), c.cfg.StopTimeout)
		defer cancel()
		if err := c.consoleSrv.Shutdown(ctx); err != nil {
			c.log.Warn("graceful stop of the console timed out; stopping hard", "err", err)
			_ = c.consoleSrv.Close()
		}
	}
}

func (c *Controller) close() {
	c.stop()
	if c.lis != nil {
		_ = c.lis.Close()
	}
	if c.metricsLis != nil {
		_ = c.metricsLis.Close()
	}
	if c.pprofLis != nil {
		_ = c.pprofLis.Close()
	}
	if c.consoleLis != nil {
		_ = c.consoleLis.Close()
	}
	if c.role != nil {
		_ = c.role.fwd.Close()
	}
	c.closeStore()
}
