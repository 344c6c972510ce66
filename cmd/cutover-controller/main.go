// Command cutover-controller is cutover's control plane: it serves
// AdminService and AgentService over gRPC and keeps its state in bbolt under
// --data-dir. It only reads flags (or a --config file with the same keys)
// into a controlplane.Config and runs it.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/cutover-dev/cutover/controlplane"
	"github.com/cutover-dev/cutover/controlplane/deployment"
	"github.com/cutover-dev/cutover/pkg/daemon"
	"github.com/cutover-dev/cutover/pkg/flagfile"
	"github.com/cutover-dev/cutover/pkg/logging"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

// run returns the exit status: 0, 1 for a failure, 2 for bad flags.
func run(args []string, stderr io.Writer) int {
	var cfg controlplane.Config
	parse := func() (level, format string, err error) {
		cfg, level, format, err = parseFlags(args, stderr)
		return level, format, err
	}
	return daemon.Main("cutover-controller", stderr, parse, func(log *slog.Logger) (daemon.Service, error) {
		cfg.Log = log
		c, err := controlplane.New(cfg)
		if err != nil {
			return nil, err
		}
		return c, nil
	})
}

func parseFlags(args []string, stderr io.Writer) (cfg controlplane.Config, logLevel, logFormat string, err error) {
	fs := flag.NewFlagSet("cutover-controller", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.DataDir, "data-dir", "", "directory for controller.db and build scratch space (required)")
	fs.StringVar(&cfg.Listen, "listen", controlplane.DefaultListen, "gRPC address for AdminService and AgentService")
	fs.StringVar(&cfg.MetricsListen, "metrics-listen", "", "address for Prometheus /metrics over HTTP (off if empty)")
	fs.StringVar(&cfg.PprofListen, "pprof-listen", "", "loopback address (127.0.0.1:PORT) for Go's runtime profiles, /debug/pprof/, over HTTP (off if empty; for diagnosing the controller)")
	fs.StringVar(&cfg.ConsoleListen, "console-listen", "", "address for the web console over HTTPS, with the controller's certificate; log in with an operator token (off if empty)")
	fs.DurationVar(&cfg.BuildTimeout, "build-timeout", 10*time.Minute, "time limit of a build whose cutover.yaml sets none")
	fs.DurationVar(&cfg.SQLTimeout, "sql-timeout", deployment.DefaultSQLTimeout, "time limit of generating a deployment's SQL script (prepare) and of running it (continue), lock waits included")
	fs.IntVar(&cfg.KeepReleases, "keep-releases", controlplane.DefaultKeepReleases, "releases kept per application beyond those an environment runs or a deployment needs; older ones and their chunks are deleted")
	fs.DurationVar(&cfg.CollectEvery, "collect-every", 5*time.Minute, "how often releases and chunks that nothing needs any more are deleted (and once at start)")
	sourceRoots, sans := &stringList{}, &stringList{}
	fs.Var(sourceRoots, "source-root", "directory application sources may live under (repeatable; default DATA_DIR/sources): RegisterApplication refuses any other")
	fs.StringVar(&cfg.TLSCACert, "tls-ca-cert", "", "CA certificate (PEM) to issue certificates with, instead of the one created in DATA_DIR/tls; with --tls-ca-key")
	fs.StringVar(&cfg.TLSCAKey, "tls-ca-key", "", "the CA's private key (PEM), with --tls-ca-cert")
	fs.Var(sans, "tls-san", "extra DNS name or IP address of the serving certificate (repeatable; localhost, 127.0.0.1 and the --listen host are always in it)")
	fs.DurationVar(&cfg.ServingCertTTL, "tls-cert-ttl", 30*24*time.Hour, "lifetime of the controller's serving certificate, renewed after two thirds of it")
	fs.DurationVar(&cfg.AgentCertTTL, "agent-cert-ttl", 24*time.Hour, "lifetime of the certificates issued to agents, which renew after two thirds of it")
	fs.StringVar(&logLevel, "log-level", "info", logging.Levels)
	fs.StringVar(&logFormat, "log-format", "text", logging.Formats)
	fs.String(flagfile.ConfigFlag, "", "YAML file whose keys are these flags' names (flags given here win)")
	if err := flagfile.Parse(fs, args); err != nil {
		return cfg, "", "", err
	}
	if fs.NArg() > 0 {
		return cfg, "", "", fmt.Errorf("unexpected arguments %q; see -h", fs.Args())
	}
	if cfg.DataDir == "" {
		return cfg, "", "", errors.New("--data-dir is required")
	}
	if (cfg.TLSCACert == "") != (cfg.TLSCAKey == "") {
		return cfg, "", "", errors.New("--tls-ca-cert and --tls-ca-key go together")
	}
	cfg.SourceRoots, cfg.TLSSANs = *sourceRoots, *sans
	return cfg, logLevel, logFormat, nil
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(s string) error {
	if s == "" {
		return errors.New("empty value")
	}
	*l = append(*l, s)
	return nil
}
