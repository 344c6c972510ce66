// Package hacluster starts several cutover controllers on one real etcd
// cluster, from built binaries, on loopback ports: what the e2e tests and
// the benchmark of failover and `make demo-ha` run against. It finds the
// leader, kills a controller and starts it again.
//
// It is a localcluster.Cluster (the first controller, which creates the CA
// and the bootstrap token, and the agents, which are given every
// controller's address) with more controllers that share its CA
// (--tls-ca-cert/--tls-ca-key), all on etcd (--store etcd).
//
// Layout under Config.Dir, beside localcluster's:
//
//	etcd/                the etcd members' data and logs (internal/etcdcluster)
//	controller-2/ …      the other controllers' --data-dir
//	controller-2.log …   their output
package hacluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/cutover-dev/cutover/controlplane/leader"
	"github.com/cutover-dev/cutover/internal/etcdcluster"
	"github.com/cutover-dev/cutover/internal/localcluster"
	"github.com/cutover-dev/cutover/pkg/poll"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// Config says how many controllers to start, on what, and where.
type Config struct {
	// BinDir holds cutover-controller and cutover-agent.
	BinDir string
	// Dir is an existing, empty directory for data and logs; never removed.
	Dir string
	// Controllers is the number of controllers (default 3).
	Controllers int
	// EtcdMembers is the number of etcd members (default 3).
	EtcdMembers int
	// EtcdBinary is the etcd binary (default: etcdcluster.Binary()).
	EtcdBinary string
	// Prefix is every controller's --etcd-prefix (default "/cutover/").
	Prefix string
	// LeaderTTL is every controller's --leader-ttl; 0: the controller's
	// default (10 s).
	LeaderTTL time.Duration
	// ControllerArgs are extra flags for every controller.
	ControllerArgs []string
}

// Cluster is the etcd cluster, the controllers and the agents.
type Cluster struct {
	// Cluster is the first controller and the agents. Its Admin client
	// talks to the first controller, which forwards to the leader while
	// it runs.
	*localcluster.Cluster
	// Etcd is the etcd cluster.
	Etcd *etcdcluster.Cluster
	// EtcdClient is a client of every etcd member.
	EtcdClient *clientv3.Client
	// Prefix is the controllers' --etcd-prefix.
	Prefix string
	// Addrs are the controllers' addresses, the first controller's first.
	Addrs []string
	// MetricsAddrs are the controllers' /metrics addresses, by address.
	MetricsAddrs map[string]string

	cfg   Config
	procs map[string]*localcluster.Proc // address → process, but the first controller's
	args  map[string][]string           // address → flags, to start it again
	names map[string]string             // address → process name
	token string
}

// Start starts the etcd members, then the controllers, and points the
// agents started from then on at every controller. Close it when done,
// even on error.
func Start(ctx context.Context, cfg Config) (*Cluster, error) {
	if cfg.Controllers <= 0 {
		cfg.Controllers = 3
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "/cutover/"
	}
	c := &Cluster{cfg: cfg, Prefix: cfg.Prefix, procs: map[string]*localcluster.Proc{},
		args: map[string][]string{}, names: map[string]string{}}
	etcdDir := filepath.Join(cfg.Dir, "etcd")
	if err := os.MkdirAll(etcdDir, 0o755); err != nil {
		return c, err
	}
	var err error
	c.Etcd, err = etcdcluster.Start(ctx, etcdcluster.Config{Members: cfg.EtcdMembers, Dir: etcdDir, Binary: cfg.EtcdBinary})
	if err != nil {
		return c, fmt.Errorf("start etcd: %w", err)
	}
	if c.EtcdClient, err = clientv3.New(clientv3.Config{Endpoints: c.Etcd.Endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()}); err != nil {
		return c, err
	}
	common := []string{"--store", "etcd", "--etcd-endpoints", strings.Join(c.Etcd.Endpoints, ","), "--etcd-prefix", cfg.Prefix}
	if cfg.LeaderTTL > 0 {
		common = append(common, "--leader-ttl", cfg.LeaderTTL.String())
	}
	common = append(common, cfg.ControllerArgs...)
	if c.Cluster, err = localcluster.Start(ctx, localcluster.Config{BinDir: cfg.BinDir, Dir: cfg.Dir, ControllerArgs: common}); err != nil {
		return c, err
	}
	c.Addrs = append(c.Addrs, c.Addr)
	c.MetricsAddrs = map[string]string{c.Addr: c.ControllerMetricsAddr}
	if c.token, err = c.AdminToken(); err != nil {
		return c, err
	}
	caDir := filepath.Join(cfg.Dir, "controller", "tls")
	for i := 2; i <= cfg.Controllers; i++ {
		port, err := localcluster.FreePort()
		if err != nil {
			return c, err
		}
		metrics, err := localcluster.FreePort()
		if err != nil {
			return c, err
		}
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		name := fmt.Sprintf("controller-%d", i)
		c.names[addr] = name
		c.MetricsAddrs[addr] = fmt.Sprintf("127.0.0.1:%d", metrics)
		c.args[addr] = append([]string{"--data-dir", filepath.Join(cfg.Dir, name), "--listen", addr, "--metrics-listen", c.MetricsAddrs[addr],
			"--tls-ca-cert", filepath.Join(caDir, "ca.crt"), "--tls-ca-key", filepath.Join(caDir, "ca.key")}, common...)
		c.Addrs = append(c.Addrs, addr)
		if err := c.start(ctx, addr); err != nil {
			return c, err
		}
	}
	c.AgentControllerAddr = strings.Join(c.Addrs, ",")
	return c, nil
}

// Proc returns the process of the controller at addr.
func (c *Cluster) Proc(addr string) *localcluster.Proc {
	if addr == c.Addr {
		return c.Controller
	}
	return c.procs[addr]
}

// Procs returns every process: the agents, then the controllers.
func (c *Cluster) Procs() []*localcluster.Proc {
	var ps []*localcluster.Proc
	if c.Cluster != nil {
		ps = c.Cluster.Procs()
	}
	for _, addr := range c.Addrs[1:] {
		if p := c.procs[addr]; p != nil {
			ps = append(ps, p)
		}
	}
	return ps
}

// start starts the controller at addr (not the first) and waits until it
// serves.
func (c *Cluster) start(ctx context.Context, addr string) error {
	p, err := c.StartProc(c.names[addr], "cutover-controller", c.args[addr]...)
	if err != nil {
		return err
	}
	c.procs[addr] = p
	return c.waitServing(ctx, addr, p)
}

// waitServing waits until the controller at addr answers its health check
// with SERVING.
func (c *Cluster) waitServing(ctx context.Context, addr string, p *localcluster.Proc) error {
	conn, err := c.DialAddr(addr, "")
	if err != nil {
		return err
	}
	defer conn.Close()
	health := healthpb.NewHealthClient(conn)
	return poll.Until(ctx, localcluster.StartTimeout, func() error {
		if ended, err := p.Exited(); ended {
			return poll.Permanent(fmt.Errorf("the controller at %s exited (%v); its log ends with:\n%s", addr, err, p.Tail(20)))
		}
		hctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		resp, err := health.Check(hctx, &healthpb.HealthCheckRequest{})
		if err != nil {
			return fmt.Errorf("controller on %s: %w", addr, err)
		}
		if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			return fmt.Errorf("controller on %s: health %s", addr, resp.GetStatus())
		}
		return nil
	})
}

// Kill kills the controller at addr with SIGKILL.
func (c *Cluster) Kill(addr string) {
	if p := c.Proc(addr); p != nil {
		p.Kill()
	}
}

// Restart starts the controller at addr again, on its data dir, after
// Kill (or its own exit), and waits until it serves.
func (c *Cluster) Restart(ctx context.Context, addr string) error {
	if p := c.Proc(addr); p != nil {
		if ended, _ := p.Exited(); !ended {
			return fmt.Errorf("the controller at %s (pid %d) still runs; kill it first", addr, p.Pid())
		}
	}
	if addr == c.Addr {
		return c.StartController(ctx)
	}
	return c.start(ctx, addr)
}

// Exited returns the addresses of the controllers whose process ended.
func (c *Cluster) Exited() []string {
	var out []string
	for _, addr := range c.Addrs {
		if ended, _ := c.Proc(addr).Exited(); ended {
			out = append(out, addr)
		}
	}
	return out
}

// Leader returns the leading controller's address and epoch, as etcd says
// now; "" when there is none.
func (c *Cluster) Leader(ctx context.Context) (string, uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return leader.Leader(ctx, c.EtcdClient, c.Prefix)
}

// WaitLeader waits up to timeout for a leader that is one of the
// controllers and not one of the addresses in not, and returns it.
func (c *Cluster) WaitLeader(ctx context.Context, timeout time.Duration, not ...string) (addr string, epoch uint64, err error) {
	err = poll.Until(ctx, timeout, func() error {
		if addr, epoch, err = c.Leader(ctx); err != nil {
			return err
		}
		switch {
		case addr == "":
			return errors.New("no leader")
		case c.Proc(addr) == nil:
			return fmt.Errorf("the leader %q is not one of the controllers", addr)
		}
		for _, n := range not {
			if addr == n {
				return fmt.Errorf("the leader is still %s", addr)
			}
		}
		return nil
	})
	return addr, epoch, err
}

// Client returns an AdminService client of the controller at addr, with
// the bootstrap admin token, and a func that closes it.
func (c *Cluster) Client(addr string) (cutoverv1.AdminServiceClient, func(), error) {
	conn, err := c.DialAddr(addr, c.token)
	if err != nil {
		return nil, nil, err
	}
	return cutoverv1.NewAdminServiceClient(conn), func() { _ = conn.Close() }, nil
}

// EtcdLeader returns the index (in Etcd.Endpoints) of the etcd member
// that leads etcd's raft now, from the members' Status.
func (c *Cluster) EtcdLeader(ctx context.Context) (int, error) {
	ids := map[uint64]int{}
	var lead uint64
	for i, ep := range c.Etcd.Endpoints {
		sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		st, err := c.EtcdClient.Status(sctx, ep)
		cancel()
		if err != nil {
			continue // a member down; another says who leads
		}
		ids[st.Header.GetMemberId()] = i
		if st.Leader != 0 {
			lead = st.Leader
		}
	}
	i, ok := ids[lead]
	if lead == 0 || !ok {
		return -1, fmt.Errorf("no etcd member says which one leads (leader id %x)", lead)
	}
	return i, nil
}

// Close stops the agents and the controllers, then etcd.
func (c *Cluster) Close() {
	if c.Cluster != nil {
		c.Cluster.Close()
	}
	for _, p := range c.procs {
		p.Stop()
	}
	if c.EtcdClient != nil {
		_ = c.EtcdClient.Close()
	}
	if c.Etcd != nil {
		c.Etcd.Close()
	}
}
