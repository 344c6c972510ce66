package daemon

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/cutover-dev/cutover/pkg/errkind"
)

type service struct{ err error }

func (s service) Run(context.Context) error { return s.err }

func TestMainExitStatus(t *testing.T) {
	ok := func() (string, string, error) { return "info", "text", nil }
	built := func(err error) func(*slog.Logger) (Service, error) {
		return func(*slog.Logger) (Service, error) { return service{err: err}, nil }
	}
	tests := []struct {
		name   string
		parse  func() (string, string, error)
		build  func(*slog.Logger) (Service, error)
		status int
		out    string // part of stderr; "" = nothing
	}{
		{"runs and stops", ok, built(nil), ExitOK, ""},
		{"help", func() (string, string, error) { return "", "", flag.ErrHelp }, built(nil), ExitOK, ""},
		{"bad flags", func() (string, string, error) { return "", "", errors.New("flag provided but not defined: -x") }, built(nil), ExitUsage, "d: flag provided but not defined: -x"},
		{"bad log level", func() (string, string, error) { return "loud", "text", nil }, built(nil), ExitUsage, "loud"},
		{"invalid configuration", ok, func(*slog.Logger) (Service, error) {
			return nil, fmt.Errorf("--root is required: %w", errkind.InvalidArgument)
		}, ExitUsage, "d: --root is required"},
		{"cannot start", ok, func(*slog.Logger) (Service, error) {
			return nil, fmt.Errorf("data dir in use: %w", errkind.FailedPrecondition)
		}, ExitFailed, "d: data dir in use"},
		{"fails while running", ok, built(errors.New("listen: address in use")), ExitFailed, "d: listen: address in use"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			if got := Main("d", &stderr, tt.parse, tt.build); got != tt.status {
				t.Errorf("Main = %d, want %d; stderr:\n%s", got, tt.status, stderr.String())
			}
			if (tt.out == "") != (stderr.Len() == 0) || !strings.Contains(stderr.String(), tt.out) {
				t.Errorf("stderr = %q, want it to hold %q", stderr.String(), tt.out)
			}
		})
	}
}
