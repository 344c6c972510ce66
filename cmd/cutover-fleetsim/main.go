// Command cutover-fleetsim runs N simulated agents in one process against
// a real controller (see fleetsim): each enrolls with the join token, keeps
// its own TLS connection and session, and stages and activates releases
// like a real agent, with apps that are never run. It prints one line when
// every agent is connected and runs until SIGTERM or SIGINT. It only reads
// flags.
//
//	cutoverctl agent token create --environment staging --uses 1000 > join.token
//	cutover-fleetsim --controller 127.0.0.1:7070 --environment staging --agents 1000 \
//	    --join-token-file join.token --ca-file DATA/tls/ca.crt
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/cutover-dev/cutover/fleetsim"
	"github.com/cutover-dev/cutover/pkg/logging"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	var cfg fleetsim.Config
	var logLevel string
	fs := flag.NewFlagSet("cutover-fleetsim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.Controller, "controller", "127.0.0.1:7070", "the controller's gRPC address")
	fs.StringVar(&cfg.Environment, "environment", "", "the environment every agent serves (required)")
	fs.IntVar(&cfg.Agents, "agents", 10, "how many agents to run")
	fs.StringVar(&cfg.JoinTokenFile, "join-token-file", "", "a join token with at least --agents uses (cutoverctl agent token create --uses N)")
	fs.StringVar(&cfg.CAFile, "ca-file", "", "the controller's CA certificate (default: trust the CA the join token names)")
	fs.StringVar(&cfg.NamePrefix, "name-prefix", "sim-", "prefix of the agents' names, followed by a 5-digit number")
	fs.StringVar(&cfg.DataDir, "data-dir", "", "directory with one subdirectory per agent (default: a new temporary directory, removed at exit)")
	fs.IntVar(&cfg.StartConcurrency, "start-concurrency", fleetsim.DefaultStartConcurrency, "how many agents enroll and connect at once")
	fs.IntVar(&cfg.StageConcurrency, "stage-concurrency", 0, "how many of the agents stage at once (0: no limit); thousands at once on a few CPUs starve their own connections' keepalives")
	fs.BoolVar(&cfg.Peers, "peers", false, "every agent serves what it holds and stages to the others on a loopback port (as cutover-agent --peer-listen), and fetches from them")
	fs.StringVar(&logLevel, "log-level", "warn", logging.Levels)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if cfg.Environment == "" {
		fmt.Fprintln(stderr, "cutover-fleetsim: --environment is required")
		return 2
	}
	log, err := logging.New(stderr, "text", logLevel)
	if err != nil {
		fmt.Fprintln(stderr, "cutover-fleetsim: --log-level:", err)
		return 2
	}
	cfg.Log = log
	if cfg.DataDir == "" {
		if cfg.DataDir, err = os.MkdirTemp("", "cutover-fleetsim-"); err != nil {
			fmt.Fprintln(stderr, "cutover-fleetsim:", err)
			return 1
		}
		defer os.RemoveAll(cfg.DataDir)
	}
	// Two files per agent (its connection, its bbolt file), and some to spare.
	if _, err := fleetsim.RaiseFileLimit(uint64(2*cfg.Agents + 256)); err != nil {
		fmt.Fprintln(stderr, "cutover-fleetsim:", err)
		return 1
	}
	fleetsim.RaiseThreadLimit(cfg.Agents)
	sim, err := fleetsim.New(cfg)
	if err != nil {
		fmt.Fprintln(stderr, "cutover-fleetsim:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- sim.Run(ctx) }()
	go func() {
		if sim.WaitConnected(ctx, 24*time.Hour) == nil {
			fmt.Fprintf(stdout, "cutover-fleetsim: %d agents connected to %s (environment %s) in %s\n",
				cfg.Agents, cfg.Controller, cfg.Environment, time.Since(start).Round(time.Millisecond))
		}
	}()
	if err := <-done; err != nil {
		fmt.Fprintln(stderr, "cutover-fleetsim:", err)
		return 1
	}
	return 0
}
