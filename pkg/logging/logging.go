// Package logging builds the *slog.Logger that both daemons use, from the
// --log-format and --log-level flags, and names the log field keys that every
// package shares, so that a line about a deployment can be found by its id
// and environment whichever binary wrote it.
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/cutover-dev/cutover/pkg/errkind"
)

// The shared log field keys. Use them, not string literals, for these fields:
//
//	log.Info("prepared", logging.KeyDeployment, d.ID, logging.KeyEnvironment, d.Environment)
const (
	// KeyDeployment is the deployment id.
	KeyDeployment = "deployment"
	// KeyEnvironment is the environment name.
	KeyEnvironment = "environment"
	// KeyAgent is the agent (front-end) name.
	KeyAgent = "agent"
	// KeyRelease is the release id.
	KeyRelease = "release"
	// KeyApplication is the application name.
	KeyApplication = "application"
)

// Formats lists the values New accepts for format, for flag help texts.
const Formats = "text|json"

// Levels lists the values New accepts for level, for flag help texts.
const Levels = "debug|info|warn|error"

// New returns a logger that writes to w in format ("text" or "json") at level
// ("debug", "info", "warn" or "error"; case does not matter). An empty format
// means "text" and an empty level means "info". Any other value is an
// errkind.InvalidArgument error that names the value and the accepted ones.
func New(w io.Writer, format, level string) (*slog.Logger, error) {
	lvl, err := ParseLevel(level)
	if err != nil {
		return nil, err
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch strings.ToLower(strings.TrimSpace(format)) {
	case "", "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, errkind.New(errkind.InvalidArgument, fmt.Sprintf(
			"log format %q is not known: use one of %s", format, Formats))
	}
}

// ParseLevel turns "debug", "info", "warn" (or "warning") or "error", in any
// case, into a slog.Level; empty means info. Any other value is an
// errkind.InvalidArgument error.
func ParseLevel(level string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(level)) {
	case "debug":
		return slog.LevelDebug, nil
	case "", "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	default:
		return 0, errkind.New(errkind.InvalidArgument, fmt.Sprintf(
			"log level %q is not known: use one of %s", level, Levels))
	}
}
