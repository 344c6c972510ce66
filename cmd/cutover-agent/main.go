// Command cutover-agent runs on each front-end: it connects to the
// controller, stages releases under --root, swaps and supervises the apps.
// It only reads flags (or a --config file with the same keys) into an
// agent.Config and runs it.
package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"

	"github.com/cutover-dev/cutover/agent"
	"github.com/cutover-dev/cutover/pkg/daemon"
	"github.com/cutover-dev/cutover/pkg/flagfile"
	"github.com/cutover-dev/cutover/pkg/logging"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

// run returns the exit status: 0, 1 for a failure, 2 for bad flags.
func run(args []string, stderr io.Writer) int {
	var cfg agent.Config
	parse := func() (level, format string, err error) {
		cfg, level, format, err = parseFlags(args, stderr)
		return level, format, err
	}
	return daemon.Main("cutover-agent", stderr, parse, func(log *slog.Logger) (daemon.Service, error) {
		cfg.Log = log
		a, err := agent.New(cfg)
		if err != nil {
			return nil, err
		}
		return a, nil
	})
}

func parseFlags(args []string, stderr io.Writer) (cfg agent.Config, logLevel, logFormat string, err error) {
	fs := flag.NewFlagSet("cutover-agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	env, labels := keyValues{}, keyValues{}
	fs.StringVar(&cfg.Controller, "controller", agent.DefaultController, "controller's gRPC address; several controllers sharing one etcd: their addresses, comma-separated (the agent follows the leader)")
	fs.StringVar(&cfg.Environment, "environment", "", "environment this front-end serves (required)")
	fs.StringVar(&cfg.Name, "name", "", "agent name, a DNS label (default: the host name)")
	fs.StringVar(&cfg.DataDir, "data-dir", "", "directory for agent.db and the apps' logs (required)")
	fs.StringVar(&cfg.Root, "root", "", "directory of ROOT/<app>/releases/ and ROOT/<app>/current (required)")
	fs.Var(env, "env", "KEY=VALUE given to every app (repeatable)")
	fs.Var(labels, "label", "KEY=VALUE label of this agent (repeatable)")
	fs.StringVar(&cfg.JoinTokenFile, "join-token-file", "", "file holding the join token this agent enrolls with (`cutoverctl agent token create`); needed only until it has a certificate (DATA_DIR/tls/agent.pem)")
	fs.StringVar(&cfg.CAFile, "ca-file", "", "the controller's CA certificate (its DATA_DIR/tls/ca.crt); optional: the join token carries the CA's hash")
	fs.Int64Var(&cfg.StageRate, "stage-rate", 0, "cap on how fast each stage writes, in bytes per second (an environment's stage_rate may lower it; 0: none)")
	fs.StringVar(&cfg.PeerListen, "peer-listen", "", "address where this agent serves the release chunks it holds to the agents of its environment, over mutual TLS with its certificate (off if empty; it still fetches from peers the controller names)")
	fs.StringVar(&cfg.PeerAdvertise, "peer-advertise", "", "the HOST:PORT other agents dial to reach --peer-listen (default: --peer-listen's address, which must then name a host)")
	fs.StringVar(&cfg.MetricsListen, "metrics-listen", "", "address for Prometheus /metrics over HTTP (off if empty)")
	fs.StringVar(&cfg.PprofListen, "pprof-listen", "", "loopback address (127.0.0.1:PORT) for Go's runtime profiles, /debug/pprof/, over HTTP (off if empty; for diagnosing the agent)")
	fs.StringVar(&logLevel, "log-level", "info", logging.Levels)
	fs.StringVar(&logFormat, "log-format", "text", logging.Formats)
	fs.String(flagfile.ConfigFlag, "", "YAML file whose keys are these flags' names (flags given here win)")
	if err := flagfile.Parse(fs, args); err != nil {
		return cfg, "", "", err
	}
	if fs.NArg() > 0 {
		return cfg, "", "", fmt.Errorf("unexpected arguments %q; see -h", fs.Args())
	}
	cfg.Env, cfg.Labels = env, labels
	return cfg, logLevel, logFormat, nil
}

// keyValues is a repeatable KEY=VALUE flag.
type keyValues map[string]string

func (kv keyValues) String() string {
	keys := make([]string, 0, len(kv))
	for k := range kv {
		keys = append(keys, k+"="+kv[k])
	}
	sort.Strings(keys)
	return strings.Join(keys, ",")
}

func (kv keyValues) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" || strings.ContainsAny(k, " \t\n") {
		return fmt.Errorf("%q is not KEY=VALUE", s)
	}
	kv[k] = v
	return nil
}
