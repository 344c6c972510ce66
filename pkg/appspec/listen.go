package appspec

import (
	"errors"
	"fmt"
	"net"
	"path"
	"strings"
	"syscall"

	"github.com/cutover-dev/cutover/pkg/errkind"
)

// MaxListen bounds run.listen.
const MaxListen = 16

// HealthFDName is the LISTEN_FDNAMES name of the private socket the agent
// adds, last, to the sockets of run.listen: only the process it was made
// for serves on it, so a health check through it reaches that process
// itself, not the old one that shares the public sockets.
const HealthFDName = "cutover-health"

// stopSignals are the signals run.stop_signal may name.
var stopSignals = map[string]syscall.Signal{
	"SIGTERM": syscall.SIGTERM, "SIGINT": syscall.SIGINT, "SIGQUIT": syscall.SIGQUIT,
	"SIGHUP": syscall.SIGHUP, "SIGUSR1": syscall.SIGUSR1, "SIGUSR2": syscall.SIGUSR2,
	"SIGWINCH": syscall.SIGWINCH,
}

// Listener is one entry of run.listen.
type Listener struct {
	// Network is "tcp" or "unix".
	Network string
	// Address is host:port for tcp, an absolute path for unix.
	Address string
}

// String returns the entry as written: tcp://host:port or unix:///path.
func (l Listener) String() string { return l.Network + "://" + l.Address }

// ParseListener parses one run.listen entry, after ${VAR} expansion:
// "tcp://HOST:PORT" (HOST may be empty, 0.0.0.0 or [::]) or
// "unix:///ABSOLUTE/PATH". Errors are errkind.InvalidArgument.
func ParseListener(s string) (Listener, error) {
	network, addr, ok := strings.Cut(s, "://")
	if !ok {
		return Listener{}, fmt.Errorf("run.listen %q: want tcp://HOST:PORT or unix:///PATH: %w", s, errkind.InvalidArgument)
	}
	switch network {
	case "tcp":
		host, port, err := net.SplitHostPort(addr)
		if err != nil || port == "" || strings.ContainsAny(host, "/") {
			return Listener{}, fmt.Errorf("run.listen %q: want tcp://HOST:PORT: %w", s, errkind.InvalidArgument)
		}
	case "unix":
		if !path.IsAbs(addr) || path.Clean(addr) != addr {
			return Listener{}, fmt.Errorf("run.listen %q: a unix socket needs a clean absolute path (unix:///run/app.sock): %w", s, errkind.InvalidArgument)
		}
	default:
		return Listener{}, fmt.Errorf("run.listen %q: the scheme must be tcp or unix: %w", s, errkind.InvalidArgument)
	}
	return Listener{Network: network, Address: addr}, nil
}

// Listeners returns run.listen with ${VAR} expanded from env, parsed.
func (s *Spec) Listeners(env map[string]string) ([]Listener, error) {
	out := make([]Listener, 0, len(s.Run.Listen))
	for _, raw := range s.Run.Listen {
		l, err := ParseListener(s.Expand(env, raw))
		if err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, nil
}

// StopSignal returns run.stop_signal, SIGTERM when empty.
func (s *Spec) StopSignal() syscall.Signal {
	if sig, ok := stopSignals[s.Run.StopSignal]; ok {
		return sig
	}
	return syscall.SIGTERM
}

// validateListen checks run.listen (before expansion: an entry with a
// ${VAR} is checked for its scheme only) and run.stop_signal.
func (s *Spec) validateListen() error {
	if len(s.Run.Listen) > MaxListen {
		return tooMany("run.listen", len(s.Run.Listen), MaxListen, "sockets")
	}
	seen := map[string]bool{}
	for _, raw := range s.Run.Listen {
		if seen[raw] {
			return fmt.Errorf("app spec %q: run.listen names %q twice: %w", s.Name, raw, errkind.InvalidArgument)
		}
		seen[raw] = true
		if len(raw) > MaxURLBytes {
			return fmt.Errorf("app spec %q: a run.listen entry is longer than %d bytes (see docs/limits.md): %w", s.Name, MaxURLBytes, errkind.InvalidArgument)
		}
		if strings.Contains(raw, "$") {
			if !strings.HasPrefix(raw, "tcp://") && !strings.HasPrefix(raw, "unix://") {
				return fmt.Errorf("app spec %q: run.listen %q: the scheme must be tcp or unix: %w", s.Name, raw, errkind.InvalidArgument)
			}
			continue
		}
		if _, err := ParseListener(raw); err != nil {
			return fmt.Errorf("app spec %q: %w", s.Name, err)
		}
	}
	if s.Run.StopSignal != "" {
		if _, ok := stopSignals[s.Run.StopSignal]; !ok {
			return fmt.Errorf("app spec %q: run.stop_signal %q: want one of SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1, SIGUSR2, SIGWINCH: %w",
				s.Name, s.Run.StopSignal, errkind.InvalidArgument)
		}
	}
	if len(s.Run.Listen) > 0 && s.Run.Health != "" && !strings.HasPrefix(s.Run.Health, "/") &&
		!strings.HasPrefix(s.Run.Health, "http://") {
		return fmt.Errorf("app spec %q: run.health %q: with run.listen, the health check is an HTTP GET of a path (/healthz) or http:// URL, sent to the new process's private socket: %w",
			s.Name, s.Run.Health, errkind.InvalidArgument)
	}
	return nil
}

// errNoListen is returned by HealthPath for a spec without run.listen.
var errNoListen = errors.New("no run.listen")

// HealthPath returns the path and query of run.health that the agent asks
// the private health socket for ("/healthz" from "http://x:8080/healthz"
// or "/healthz"); "" when run.health is empty.
func (s *Spec) HealthPath(env map[string]string) (string, error) {
	if len(s.Run.Listen) == 0 {
		return "", errNoListen
	}
	h := s.Expand(env, s.Run.Health)
	if h == "" || strings.HasPrefix(h, "/") {
		return h, nil
	}
	rest := strings.TrimPrefix(h, "http://")
	i := strings.IndexByte(rest, '/')
	if i < 0 {
		return "/", nil
	}
	return rest[i:], nil
}
