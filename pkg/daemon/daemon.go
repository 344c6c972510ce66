// Package daemon is the main of a cutover daemon (the controller and the
// agent): it turns flags that failed to parse, logging, the daemon's
// construction and its run into log lines and exit statuses, and stops the
// daemon on SIGINT or SIGTERM.
package daemon

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os/signal"
	"syscall"

	"github.com/cutover-dev/cutover/pkg/errkind"
	"github.com/cutover-dev/cutover/pkg/logging"
)

// Exit statuses.
const (
	// ExitOK: the daemon stopped cleanly, or help was asked for.
	ExitOK = 0
	// ExitFailed: the daemon could not start or failed while running.
	ExitFailed = 1
	// ExitUsage: bad flags or a configuration refused as invalid.
	ExitUsage = 2
)

// Service is a daemon, built and ready to run until ctx ends.
type Service interface {
	Run(ctx context.Context) error
}

// Main runs the daemon called name and returns its exit status. parse reads
// the flags (flag.ErrHelp: help was printed) and returns the log level and
// format; build makes the daemon with the logger; the daemon then runs
// until the first SIGINT or SIGTERM (a second one kills at once). Errors go
// to stderr after "name:". A build error of kind errkind.InvalidArgument is
// a usage error.
func Main(name string, stderr io.Writer, parse func() (level, format string, err error), build func(*slog.Logger) (Service, error)) int {
	fail := func(status int, err error) int {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return status
	}
	level, format, err := parse()
	if errors.Is(err, flag.ErrHelp) {
		return ExitOK
	}
	if err != nil {
		return fail(ExitUsage, err)
	}
	log, err := logging.New(stderr, format, level)
	if err != nil {
		return fail(ExitUsage, err)
	}
	svc, err := build(log)
	if errors.Is(err, errkind.InvalidArgument) {
		return fail(ExitUsage, err)
	}
	if err != nil {
		return fail(ExitFailed, err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go func() { <-ctx.Done(); stop() }() // a second signal kills at once
	if err := svc.Run(ctx); err != nil {
		return fail(ExitFailed, err)
	}
	return ExitOK
}
