// Command cutover-controller is cutover's control plane: it serves
// AdminService and AgentService over gRPC and keeps its state in bbolt under
// --data-dir, or in etcd (--store etcd). It only reads flags (or a --config file with the same keys)
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
	"github.com/cutover-dev/cutover/controlplane/etcdstore"
	"github.com/cutover-dev/cutover/controlplane/leader"
	"github.com/cutover-dev/cutover/pkg/bytesize"
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
	fs.StringVar(&cfg.Store, "store", controlplane.StoreBolt, "where the records live: bbolt (DATA_DIR/controller.db) or etcd (--etcd-endpoints; release chunks stay in controller.db)")
	fs.StringVar(&cfg.Advertise, "advertise", "", "the address other controllers, agents and operators reach this controller at, announced when it leads (--store etcd); default the --listen address (the host name for a wildcard)")
	fs.DurationVar(&cfg.LeaderTTL, "leader-ttl", leader.DefaultTTL, "lifetime of the leader's etcd lease (--store etcd): a dead leader is replaced within about this time")
	fs.Var((*bytesize.Flag)(&cfg.MaxEgress), "max-egress", "cap on the release data the controller sends to agents and follower controllers together, in bytes per second, e.g. 50MiB (KiB, MiB, GiB; a token bucket: over any window at most the cap times the window plus one 1 MiB batch); 0: no cap")
	etcdEndpoints := &stringList{}
	fs.Var(etcdEndpoints, "etcd-endpoints", "etcd members' client URLs, comma-separated (with --store etcd)")
	fs.StringVar(&cfg.Etcd.Prefix, "etcd-prefix", etcdstore.DefaultPrefix, "key prefix of the records in etcd; controllers that share state use the same")
	fs.StringVar(&cfg.Etcd.CAFile, "etcd-ca-file", "", "CA certificate (PEM) that verifies the etcd members' certificates (https:// endpoints)")
	fs.StringVar(&cfg.Etcd.CertFile, "etcd-cert-file", "", "client certificate (PEM) for etcd, with --etcd-key-file")
	fs.StringVar(&cfg.Etcd.KeyFile, "etcd-key-file", "", "private key (PEM) of --etcd-cert-file")
	fs.BoolVar(&cfg.Etcd.Import, "etcd-import", false, "at start, copy the records of DATA/controller.db (a controller that ran alone on bbolt) into etcd, unless etcd holds a controller's records already; start the first controller on etcd with it")
	fs.StringVar(&cfg.Etcd.Username, "etcd-username", "", "etcd user, with --etcd-password-file")
	fs.StringVar(&cfg.Etcd.PasswordFile, "etcd-password-file", "", "file that holds the etcd user's password (never on the command line)")
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
	for _, e := range *etcdEndpoints {
		cfg.Etcd.Endpoints = append(cfg.Etcd.Endpoints, strings.Split(e, ",")...)
	}
	if err := cfg.CheckStore(); err != nil {
		return cfg, "", "", err
	}
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
