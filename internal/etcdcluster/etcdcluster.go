// Package etcdcluster starts a real etcd cluster of N members on loopback,
// from the etcd binary, for tests and benchmarks: what the etcd store's
// contract tests and the e2e tests on etcd run against. It never fakes
// etcd.
//
// The binary is $CUTOVER_ETCD, or etcd on PATH (`make etcd` builds the
// pinned release, tools/etcd/go.mod, into $(go env GOPATH)/bin). Tests that
// need it skip when it is missing, except under CI=true, where they fail.
//
// Layout under Config.Dir:
//
//	m0/ m1/ …     each member's --data-dir
//	m0.log …      each member's output
package etcdcluster

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/cutover-dev/cutover/internal/localcluster"
	"github.com/cutover-dev/cutover/pkg/poll"
)

// BinaryEnv names the environment variable that gives the etcd binary.
const BinaryEnv = "CUTOVER_ETCD"

// StartTimeout bounds the wait for the members to serve.
const StartTimeout = 60 * time.Second

// Binary returns the etcd binary to run: $CUTOVER_ETCD, else etcd on PATH.
func Binary() (string, error) {
	if b := os.Getenv(BinaryEnv); b != "" {
		if _, err := os.Stat(b); err != nil {
			return "", fmt.Errorf("$%s: %w", BinaryEnv, err)
		}
		return b, nil
	}
	b, err := exec.LookPath("etcd")
	if err != nil {
		return "", fmt.Errorf("no etcd binary: set $%s or put etcd on PATH (`make etcd` builds the pinned release): %w", BinaryEnv, err)
	}
	return b, nil
}

// Require returns the etcd binary, or skips the test when there is none,
// except under CI=true, where that fails it.
func Require(t testing.TB) string {
	t.Helper()
	b, err := Binary()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%v; CI must run the etcd tests", err)
		}
		t.Skip(err)
	}
	return b
}

// Config says how many members to start, and where.
type Config struct {
	// Members is the number of members (default 3).
	Members int
	// Dir is an existing directory for the members' data and logs.
	Dir string
	// Binary is the etcd binary (default: Binary()).
	Binary string
	// Args are extra flags for every member (e.g. --max-txn-ops 256).
	Args []string
}

// Cluster is a running etcd cluster.
type Cluster struct {
	// Endpoints are the members' client URLs, in member order.
	Endpoints []string

	cfg     Config
	members []*member
}

type member struct {
	name      string
	clientURL string
	peerURL   string
	proc      *localcluster.Proc
	started   bool
}

// Start starts the members on free loopback ports and waits until every
// one reports itself healthy. Close it when done, even on error.
func Start(ctx context.Context, cfg Config) (*Cluster, error) {
	if cfg.Members <= 0 {
		cfg.Members = 3
	}
	if cfg.Binary == "" {
		b, err := Binary()
		if err != nil {
			return nil, err
		}
		cfg.Binary = b
	}
	c := &Cluster{cfg: cfg}
	var initial []string
	for i := range cfg.Members {
		cp, err := localcluster.FreePort()
		if err != nil {
			return c, err
		}
		pp, err := localcluster.FreePort()
		if err != nil {
			return c, err
		}
		m := &member{name: fmt.Sprintf("m%d", i),
			clientURL: fmt.Sprintf("http://127.0.0.1:%d", cp), peerURL: fmt.Sprintf("http://127.0.0.1:%d", pp)}
		c.members = append(c.members, m)
		c.Endpoints = append(c.Endpoints, m.clientURL)
		initial = append(initial, m.name+"="+m.peerURL)
	}
	for i := range c.members {
		if err := c.start(i, strings.Join(initial, ",")); err != nil {
			return c, err
		}
	}
	for i := range c.members {
		if err := c.waitHealthy(ctx, i); err != nil {
			return c, err
		}
	}
	return c, nil
}

// start starts member i; initial is the --initial-cluster list.
func (c *Cluster) start(i int, initial string) error {
	m := c.members[i]
	state := "new"
	if m.started {
		state = "existing" // its data dir holds the cluster; the flag is ignored then
	}
	args := append([]string{
		"--name", m.name,
		"--data-dir", filepath.Join(c.cfg.Dir, m.name),
		"--listen-client-urls", m.clientURL, "--advertise-client-urls", m.clientURL,
		"--listen-peer-urls", m.peerURL, "--initial-advertise-peer-urls", m.peerURL,
		"--initial-cluster", initial, "--initial-cluster-state", state,
		"--initial-cluster-token", "cutover-test",
		"--log-level", "warn",
	}, c.cfg.Args...)
	p, err := localcluster.StartProc(c.cfg.Dir, m.name, c.cfg.Binary, args...)
	if err != nil {
		return err
	}
	m.proc, m.started = p, true
	return nil
}

// initialCluster is the --initial-cluster list of every member.
func (c *Cluster) initialCluster() string {
	var s []string
	for _, m := range c.members {
		s = append(s, m.name+"="+m.peerURL)
	}
	return strings.Join(s, ",")
}

// waitHealthy waits until member i answers its /health with true.
func (c *Cluster) waitHealthy(ctx context.Context, i int) error {
	m := c.members[i]
	client := &http.Client{Timeout: 2 * time.Second}
	return poll.Until(ctx, StartTimeout, func() error {
		if ended, err := m.proc.Exited(); ended {
			return poll.Permanent(fmt.Errorf("etcd member %s exited (%v); its log ends with:\n%s", m.name, err, m.proc.Tail(20)))
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.clientURL+"/health", nil)
		if err != nil {
			return poll.Permanent(err)
		}
		res, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("etcd member %s: %w", m.name, err)
		}
		defer res.Body.Close()
		if res.StatusCode != http.StatusOK {
			return fmt.Errorf("etcd member %s: /health answered %s", m.name, res.Status)
		}
		return nil
	})
}

// StopMember kills member i (SIGKILL), as a machine that dies would; its
// data stays for StartMember.
func (c *Cluster) StopMember(i int) error {
	if i < 0 || i >= len(c.members) {
		return fmt.Errorf("no etcd member %d (the cluster has %d)", i, len(c.members))
	}
	if p := c.members[i].proc; p != nil {
		p.Kill()
	}
	return nil
}

// StartMember starts member i again after StopMember, on its data, and
// waits until it is healthy.
func (c *Cluster) StartMember(ctx context.Context, i int) error {
	if i < 0 || i >= len(c.members) {
		return fmt.Errorf("no etcd member %d (the cluster has %d)", i, len(c.members))
	}
	if p := c.members[i].proc; p != nil {
		if ended, _ := p.Exited(); !ended {
			return fmt.Errorf("etcd member %s is running", c.members[i].name)
		}
	}
	if err := c.start(i, c.initialCluster()); err != nil {
		return err
	}
	return c.waitHealthy(ctx, i)
}

// Close stops every member (SIGTERM, then SIGKILL after a grace period).
func (c *Cluster) Close() {
	for _, m := range c.members {
		if m.proc != nil {
			m.proc.Stop()
		}
	}
}

// Main is the TestMain of a package whose tests share one cluster of
// members started once: it starts it in a temporary directory, calls set
// with it, runs the tests, stops it and removes the directory. Without the
// etcd binary it calls set with nil and runs the tests, which then skip
// (Shared), except under CI=true, where it fails. It returns the exit
// status.
func Main(m *testing.M, members int, set func(*Cluster), args ...string) int {
	bin, err := Binary()
	if err != nil {
		if os.Getenv("CI") == "true" {
			fmt.Fprintf(os.Stderr, "%v; CI must run the etcd tests\n", err)
			return 1
		}
		set(nil)
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "cutover-etcd-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	c, err := Start(ctx, Config{Members: members, Dir: dir, Binary: bin, Args: args})
	cancel()
	defer c.Close()
	if err != nil {
		fmt.Fprintln(os.Stderr, "start etcd:", err)
		return 1
	}
	set(c)
	return m.Run()
}

// Shared returns c, the cluster a package's Main started, or skips the
// test when there is none (no etcd binary outside CI).
func Shared(t testing.TB, c *Cluster) *Cluster {
	t.Helper()
	if c == nil {
		Require(t) // skips, or fails under CI
		t.Fatal("the package's etcd cluster did not start")
	}
	return c
}

// Client returns a client of every member of c, the cluster a package's
// Main started (Shared: it skips without one), closed when the test ends.
func Client(t testing.TB, c *Cluster) *clientv3.Client {
	t.Helper()
	c = Shared(t, c)
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}
