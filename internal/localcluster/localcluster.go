// Package localcluster starts a cutover controller and agents from built
// binaries, in one directory, on loopback ports: what the end-to-end tests
// and cutover-demo run against. It also holds the small helpers both need
// (free ports, polling with a deadline, asking an app over HTTP, copying an
// application's source).
//
// Layout under Config.Dir:
//
//	controller/          the controller's --data-dir (tls/ca.crt, bootstrap.token)
//	controller.log       its output
//	<agent>/join.token   the join token an agent enrolled with
//	<agent>/data/        an agent's --data-dir (tls/agent.pem once enrolled)
//	<agent>/root/        its --root (ROOT/<app>/current, releases/)
//	<agent>.log          its output
package localcluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/cutover-dev/cutover/pkg/poll"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// Timing of the waits.
const (
	// StartTimeout bounds the wait for a process to serve or connect.
	StartTimeout = 30 * time.Second
	// rpcTimeout bounds each request without a deadline of its own.
	rpcTimeout = 10 * time.Second
)

// Config says where the binaries are and where the cluster lives.
type Config struct {
	// BinDir holds cutover-controller and cutover-agent.
	BinDir string
	// Dir is an existing, empty directory for data, roots and logs. The
	// cluster never removes it.
	Dir string
	// ControllerArgs are extra flags for the controller (e.g. --log-level debug).
	ControllerArgs []string
	// Pprof makes the controller and every agent serve their runtime
	// profiles (--pprof-listen) on a free loopback port:
	// Cluster.ControllerPprofAddr and Agent.PprofAddr.
	Pprof bool
	// AgentPeers makes every agent serve its chunks to its peers
	// (--peer-listen) on a free loopback port.
	AgentPeers bool
}

// Cluster is a controller, its agents and a client of its AdminService.
type Cluster struct {
	// Addr is the controller's gRPC address.
	Addr string
	// Controller is the controller process (replaced by RestartController).
	Controller *Proc
	// ControllerMetricsAddr is the controller's --metrics-listen address.
	ControllerMetricsAddr string
	// ControllerPprofAddr is the controller's --pprof-listen address
	// (Config.Pprof); empty: none.
	ControllerPprofAddr string
	// Agents in the order they were started.
	Agents []*Agent
	// Admin is an AdminService client with the bootstrap admin token;
	// requests without a deadline get 10 s.
	Admin cutoverv1.AdminServiceClient
	// CAFile is the controller's CA certificate, DATA_DIR/tls/ca.crt.
	CAFile string
	// AdminTokenFile is the bootstrap admin token, DATA_DIR/bootstrap.token.
	AdminTokenFile string
	// AgentControllerAddr, when set, is the --controller of the agents
	// started from then on instead of Addr: a proxy in front of the
	// controller, for instance.
	AgentControllerAddr string

	cfg    Config
	conn   *grpc.ClientConn
	health healthpb.HealthClient
}

// Start starts a controller on a free loopback port and waits until its
// gRPC health check answers SERVING. Close it when done, even on error.
func Start(ctx context.Context, cfg Config) (*Cluster, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	c := &Cluster{Addr: fmt.Sprintf("127.0.0.1:%d", port), cfg: cfg,
		CAFile:         filepath.Join(cfg.Dir, "controller", "tls", "ca.crt"),
		AdminTokenFile: filepath.Join(cfg.Dir, "controller", "bootstrap.token")}
	return c, c.startController(ctx)
}

// Dial connects to the controller over TLS (its CA) with token (none if
// empty); requests without a deadline get 10 s.
func (c *Cluster) Dial(token string) (*grpc.ClientConn, error) {
	return c.DialAddr(c.Addr, token)
}

// DialAddr is Dial to another controller of the same CA (several
// controllers sharing one etcd).
func (c *Cluster) DialAddr(addr, token string) (*grpc.ClientConn, error) {
	pem, err := os.ReadFile(c.CAFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no certificate", c.CAFile)
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13})),
		grpc.WithUnaryInterceptor(boundedCall)}
	if token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(Bearer(token)))
	}
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("client for %s: %w", addr, err)
	}
	return conn, nil
}

// Bearer is a per-RPC credential that sends a token as
// `authorization: Bearer <token>`, over TLS only.
type Bearer string

// GetRequestMetadata returns the authorization header.
func (b Bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

// RequireTransportSecurity is true: a token never goes in plaintext.
func (Bearer) RequireTransportSecurity() bool { return true }

// AdminToken returns the bootstrap admin token.
func (c *Cluster) AdminToken() (string, error) {
	b, err := os.ReadFile(c.AdminTokenFile)
	return strings.TrimSpace(string(b)), err
}

// Token creates an operator token for subject with role (viewer, deployer,
// approver, admin) in env (every environment if empty).
func (c *Cluster) Token(ctx context.Context, subject string, role cutoverv1.Role, env string) (string, error) {
	res, err := c.Admin.CreateToken(ctx, &cutoverv1.CreateTokenRequest{Subject: subject, Role: role, Environment: env})
	if err != nil {
		return "", fmt.Errorf("create a %s token for %s: %w", role, subject, err)
	}
	return res.GetToken(), nil
}

// ClientAs returns an AdminService client that uses token, and a func
// that closes its connection.
func (c *Cluster) ClientAs(token string) (cutoverv1.AdminServiceClient, func(), error) {
	conn, err := c.Dial(token)
	if err != nil {
		return nil, nil, err
	}
	return cutoverv1.NewAdminServiceClient(conn), func() { _ = conn.Close() }, nil
}

// CtlEnv is the environment cutoverctl needs to act as the bootstrap
// admin on this cluster: CUTOVER_CONTROLLER, CUTOVER_CA_FILE and
// CUTOVER_TOKEN_FILE.
func (c *Cluster) CtlEnv() []string {
	return []string{"CUTOVER_CONTROLLER=" + c.Addr, "CUTOVER_CA_FILE=" + c.CAFile, "CUTOVER_TOKEN_FILE=" + c.AdminTokenFile}
}

// boundedCall gives every request without a deadline one of rpcTimeout.
func boundedCall(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, rpcTimeout)
		defer cancel()
	}
	return invoker(ctx, method, req, reply, cc, opts...)
}

// startController starts the controller on c.Addr and waits until it serves.
func (c *Cluster) startController(ctx context.Context) error {
	if c.ControllerMetricsAddr == "" {
		metrics, err := FreePort()
		if err != nil {
			return err
		}
		c.ControllerMetricsAddr = fmt.Sprintf("127.0.0.1:%d", metrics)
	}
	if c.cfg.Pprof && c.ControllerPprofAddr == "" {
		port, err := FreePort()
		if err != nil {
			return err
		}
		c.ControllerPprofAddr = fmt.Sprintf("127.0.0.1:%d", port)
	}
	args := []string{
		"--data-dir", filepath.Join(c.cfg.Dir, "controller"),
		"--listen", c.Addr,
		"--metrics-listen", c.ControllerMetricsAddr,
	}
	if c.ControllerPprofAddr != "" {
		args = append(args, "--pprof-listen", c.ControllerPprofAddr)
	}
	args = append(args, c.cfg.ControllerArgs...)
	p, err := startProc(c.cfg.Dir, "controller", filepath.Join(c.cfg.BinDir, "cutover-controller"), args...)
	if err != nil {
		return err
	}
	c.Controller = p
	return poll.Until(ctx, StartTimeout, func() error {
		if err := p.checkAlive(); err != nil {
			return poll.Permanent(err)
		}
		if c.conn == nil { // first start: the CA and the admin token appear once it listens
			token, err := c.AdminToken()
			if err != nil || token == "" {
				return fmt.Errorf("controller on %s: no admin token yet: %v", c.Addr, err)
			}
			conn, err := c.Dial(token)
			if err != nil {
				return err
			}
			c.conn, c.Admin, c.health = conn, cutoverv1.NewAdminServiceClient(conn), healthpb.NewHealthClient(conn)
		}
		hctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		resp, err := c.health.Check(hctx, &healthpb.HealthCheckRequest{})
		if err != nil {
			return fmt.Errorf("controller on %s: %w", c.Addr, err)
		}
		if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			return fmt.Errorf("controller on %s: health %s", c.Addr, resp.GetStatus())
		}
		return nil
	})
}

// RestartController kills the controller with SIGKILL and starts it again
// on the same data dir and address.
func (c *Cluster) RestartController(ctx context.Context) error {
	c.Controller.Kill()
	return c.startController(ctx)
}

// StartController starts the controller again, on the same data dir and
// address, after c.Controller.Kill() (for a test that acts while it is
// down), and waits until it serves.
func (c *Cluster) StartController(ctx context.Context) error {
	if ended, _ := c.Controller.Exited(); !ended {
		return fmt.Errorf("controller (pid %d) still runs; kill it first", c.Controller.Pid())
	}
	return c.startController(ctx)
}

// StartProc starts binary (a command in Config.BinDir) with args in its
// own process group, its output appended to DIR/<name>.log, and waits for
// nothing: for a process a test expects to fail or to be cut off. It is
// not one of Procs; the caller stops it.
func (c *Cluster) StartProc(name, binary string, args ...string) (*Proc, error) {
	return startProc(c.cfg.Dir, name, filepath.Join(c.cfg.BinDir, binary), args...)
}

// Procs returns every process of the cluster, agents first.
func (c *Cluster) Procs() []*Proc {
	var ps []*Proc
	for _, a := range c.Agents {
		ps = append(ps, a.Proc)
	}
	if c.Controller != nil {
		ps = append(ps, c.Controller)
	}
	return ps
}

// Close stops the agents, kills the app processes they leave running (the
// apps outlive their agent: process.KillRecorded on each agent's run
// directory), then stops the controller, kills any app process left under
// Dir, and closes the client.
func (c *Cluster) Close() {
	var wg sync.WaitGroup
	for _, a := range c.Agents {
		wg.Go(func() {
			a.Proc.Stop()
			a.KillApps()
		})
	}
	wg.Wait()
	if c.Controller != nil {
		c.Controller.Stop()
	}
	killStrays(c.cfg.Dir)
	if c.conn != nil {
		_ = c.conn.Close()
	}
}

// Ports handed out by FreePort come from [portBase, portBase+portSpan):
// below Linux's ephemeral range (32768–60999), so that an outgoing
// connection of any process cannot take one between FreePort and the
// listen that uses it (what happened with hundreds of agents when the
// kernel chose them from the ephemeral range), and never the same twice
// in one process.
const (
	portBase = 20000
	portSpan = 12000
)

var (
	portsMu   sync.Mutex
	portsUsed = map[int]bool{}
)

// FreePort returns a loopback TCP port that was free a moment ago, and
// that this process has not handed out before.
func FreePort() (int, error) {
	portsMu.Lock()
	defer portsMu.Unlock()
	start := rand.IntN(portSpan)
	for i := range portSpan {
		port := portBase + (start+i)%portSpan
		if portsUsed[port] {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		_ = l.Close()
		portsUsed[port] = true
		return port, nil
	}
	return 0, fmt.Errorf("find a free port: none free in 127.0.0.1:%d-%d", portBase, portBase+portSpan-1)
}
