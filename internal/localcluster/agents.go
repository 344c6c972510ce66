package localcluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/cutover-dev/cutover/agent/identity"
	"github.com/cutover-dev/cutover/agent/process"
	"github.com/cutover-dev/cutover/internal/probe"
	"github.com/cutover-dev/cutover/pkg/poll"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// This file holds the agents of a cluster: starting them (enrolled with
// join tokens), restarting them, and waiting until they are connected.

// Agent is one started cutover-agent.
type Agent struct {
	// Name is its --name.
	Name string
	// Environment is its --environment.
	Environment string
	// Root is its --root: ROOT/<app>/current and ROOT/<app>/releases/.
	Root string
	// DataDir is its --data-dir.
	DataDir string
	// Port is the PORT given to its apps with --env PORT=.
	Port int
	// MetricsAddr is its --metrics-listen address (host:port).
	MetricsAddr string
	// PprofAddr is its --pprof-listen address (Config.Pprof); empty: none.
	PprofAddr string
	// PeerAddr is its --peer-listen address (Config.AgentPeers); empty: none.
	PeerAddr string
	// Proc is the process (replaced by RestartAgent).
	Proc *Proc
	// Binary is the agent's executable; empty: BinDir/cutover-agent.
	// Set it before StartAgent to start the agent from another file (a
	// new build, installed beside the old one).
	Binary string

	args []string
}

// ProbeTarget is a's front-end as internal/probe asks it: GET / on its PORT.
func (a *Agent) ProbeTarget() probe.Target {
	return probe.Target{Name: a.Name, URL: fmt.Sprintf("http://127.0.0.1:%d/", a.Port)}
}

// WriteJoinToken creates a join token for agent name in env and writes it
// to path (0600).
func (c *Cluster) WriteJoinToken(ctx context.Context, env, name, path string) error {
	res, err := c.Admin.CreateJoinToken(ctx, &cutoverv1.CreateJoinTokenRequest{Environment: env, Name: name})
	if err != nil {
		return fmt.Errorf("join token for %s/%s: %w", env, name, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(res.GetToken()+"\n"), 0o600)
}

// StartAgents starts one agent per name in environment env, each with its
// own data dir, root and free PORT, and waits until the controller lists
// every agent of the cluster connected.
func (c *Cluster) StartAgents(ctx context.Context, env string, names ...string) error {
	return c.StartLabeledAgents(ctx, env, nil, names...)
}

// StartLabeledAgents is StartAgents with --label KEY=VALUE for each of labels.
// Each agent enrolls with a join token of its own (JoinTokenFile(name)).
func (c *Cluster) StartLabeledAgents(ctx context.Context, env string, labels map[string]string, names ...string) error {
	return c.startAgents(ctx, env, labels, true, names)
}

// JoinTokenFile is where agent name's join token is: DIR/<name>/join.token.
func (c *Cluster) JoinTokenFile(name string) string {
	return filepath.Join(c.cfg.Dir, name, "join.token")
}

// StartAgentsWithJoinTokens is StartAgents for join tokens the caller
// created (as an operator would, with cutoverctl agent token create): each
// agent enrolls with the token already in JoinTokenFile(name).
func (c *Cluster) StartAgentsWithJoinTokens(ctx context.Context, env string, names ...string) error {
	return c.startAgents(ctx, env, nil, false, names)
}

// startAgents starts the named agents, with a new join token each when
// newTokens, and waits until every agent of env is connected.
func (c *Cluster) startAgents(ctx context.Context, env string, labels map[string]string, newTokens bool, names []string) error {
	for _, name := range names {
		joinToken := c.JoinTokenFile(name)
		if newTokens {
			if err := c.WriteJoinToken(ctx, env, name, joinToken); err != nil {
				return err
			}
		} else if _, err := os.Stat(joinToken); err != nil {
			return fmt.Errorf("agent %s has no join token: %w", name, err)
		}
		port, err := FreePort()
		if err != nil {
			return err
		}
		metrics, err := FreePort()
		if err != nil {
			return err
		}
		controller := c.Addr
		if c.AgentControllerAddr != "" {
			controller = c.AgentControllerAddr
		}
		a := &Agent{
			Name:        name,
			Environment: env,
			Root:        filepath.Join(c.cfg.Dir, name, "root"),
			DataDir:     filepath.Join(c.cfg.Dir, name, "data"),
			Port:        port,
			MetricsAddr: fmt.Sprintf("127.0.0.1:%d", metrics),
			args: []string{
				"--controller", controller,
				"--environment", env,
				"--name", name,
				"--data-dir", filepath.Join(c.cfg.Dir, name, "data"),
				"--root", filepath.Join(c.cfg.Dir, name, "root"),
				"--env", fmt.Sprintf("PORT=%d", port),
				"--metrics-listen", fmt.Sprintf("127.0.0.1:%d", metrics),
				"--join-token-file", joinToken,
			},
		}
		if c.cfg.Pprof {
			port, err := FreePort()
			if err != nil {
				return err
			}
			a.PprofAddr = fmt.Sprintf("127.0.0.1:%d", port)
			a.args = append(a.args, "--pprof-listen", a.PprofAddr)
		}
		if c.cfg.AgentPeers {
			port, err := FreePort()
			if err != nil {
				return err
			}
			a.PeerAddr = fmt.Sprintf("127.0.0.1:%d", port)
			a.args = append(a.args, "--peer-listen", a.PeerAddr)
		}
		for k, v := range labels {
			a.args = append(a.args, "--label", k+"="+v)
		}
		if err := c.startAgent(a); err != nil {
			return err
		}
		c.Agents = append(c.Agents, a)
	}
	return c.WaitAgentsConnected(ctx, env)
}

// startAgent starts a's process.
func (c *Cluster) startAgent(a *Agent) error {
	binary := a.Binary
	if binary == "" {
		binary = filepath.Join(c.cfg.BinDir, "cutover-agent")
	}
	p, err := startProc(c.cfg.Dir, a.Name, binary, a.args...)
	if err != nil {
		return err
	}
	a.Proc = p
	return nil
}

// StartAgent starts agent a again, with the same flags (from a.Binary when
// set), after its process was stopped (a.Proc.Stop), and waits until it is
// connected to env.
func (c *Cluster) StartAgent(ctx context.Context, a *Agent, env string) error {
	if err := c.startAgent(a); err != nil {
		return err
	}
	return poll.Until(ctx, StartTimeout, func() error {
		resp, err := c.Admin.ListAgents(ctx, &cutoverv1.ListAgentsRequest{Environment: env})
		if err != nil {
			return fmt.Errorf("ListAgents: %w", err)
		}
		for _, x := range resp.GetAgents() {
			if x.GetName() == a.Name && x.GetConnected() {
				return nil
			}
		}
		return fmt.Errorf("agent %s is not connected to environment %s", a.Name, env)
	})
}

// RestartAgent kills agent a with SIGKILL, kills the app processes it
// supervised (as a machine crash would), starts it again with the same
// flags and waits until every agent is connected to env.
func (c *Cluster) RestartAgent(ctx context.Context, a *Agent, env string) error {
	a.Proc.Kill()
	killStrays(a.Root)
	if err := c.startAgent(a); err != nil {
		return err
	}
	return c.WaitAgentsConnected(ctx, env)
}

// KillApps kills the app processes that a's agent, once stopped, left
// running (recorded in its data dir's run directory).
func (a *Agent) KillApps() {
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	_ = process.KillRecorded(ctx, filepath.Join(a.DataDir, "run"))
}

// WaitAgentsConnected waits until ListAgents shows every agent of the
// cluster that serves environment env connected.
func (c *Cluster) WaitAgentsConnected(ctx context.Context, env string) error {
	return poll.Until(ctx, StartTimeout, func() error {
		for _, a := range c.Agents {
			if err := a.Proc.checkAlive(); err != nil {
				return poll.Permanent(err)
			}
		}
		return c.AgentsConnected(ctx, c.Admin, env)
	})
}

// AgentsConnected returns nil when admin's ListAgents shows every agent of
// the cluster that serves environment env connected, else an error that
// names one that is not.
func (c *Cluster) AgentsConnected(ctx context.Context, admin cutoverv1.AdminServiceClient, env string) error {
	resp, err := admin.ListAgents(ctx, &cutoverv1.ListAgentsRequest{Environment: env})
	if err != nil {
		return fmt.Errorf("ListAgents: %w", err)
	}
	connected := map[string]bool{}
	for _, a := range resp.GetAgents() {
		connected[a.GetName()] = a.GetConnected()
	}
	for _, a := range c.Agents {
		if a.Environment == env && !connected[a.Name] {
			return fmt.Errorf("agent %s is not connected to environment %s", a.Name, env)
		}
	}
	return nil
}

// AgentConn connects to the controller as agent a, with the certificate
// it enrolled with (its DATA_DIR/tls).
func (c *Cluster) AgentConn(a *Agent) (*grpc.ClientConn, error) {
	id, err := identity.Load(identity.Config{Dir: filepath.Join(a.DataDir, "tls"), Environment: a.Environment, Name: a.Name})
	if err != nil {
		return nil, err
	}
	return grpc.NewClient(c.Addr, grpc.WithTransportCredentials(credentials.NewTLS(id.ClientTLSConfig())))
}
