// Command cutover-controller is cutover's control plane: it serves
// AdminService and AgentService over gRPC and keeps its state in bbolt under
// --data-dir. It only reads flags into a controlplane.Config and runs it.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/cutover-dev/cutover/controlplane"
	"github.com/cutover-dev/cutover/controlplane/deployment"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "cutover-controller:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		dataDir       = flag.String("data-dir", "", "directory for controller.db and build scratch space (required)")
		listen        = flag.String("listen", controlplane.DefaultListen, "gRPC address for AdminService and AgentService")
		metricsListen = flag.String("metrics-listen", "", "address for Prometheus /metrics over HTTP (off if empty)")
		buildTimeout  = flag.Duration("build-timeout", 10*time.Minute, "time limit of a build whose cutover.yaml sets none")
		sqlTimeout    = flag.Duration("sql-timeout", deployment.DefaultSQLTimeout, "time limit of generating a deployment's SQL script (prepare) and of running it (continue), lock waits included")
		logLevel      = flag.String("log-level", "info", "debug, info, warn or error")
		logFormat     = flag.String("log-format", "text", "text or json")
	)
	flag.Parse()
	if flag.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q; see -h", flag.Args())
	}
	if *dataDir == "" {
		return fmt.Errorf("--data-dir is required")
	}
	log, err := newLogger(*logLevel, *logFormat)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	c, err := controlplane.New(controlplane.Config{
		DataDir:       *dataDir,
		Listen:        *listen,
		MetricsListen: *metricsListen,
		Log:           log,
		BuildTimeout:  *buildTimeout,
		SQLTimeout:    *sqlTimeout,
	})
	if err != nil {
		return err
	}
	return c.Run(ctx)
}

func newLogger(level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: use text or json", format)
}
