// Package pprofserve serves the Go runtime's profiles (net/http/pprof:
// CPU, heap, goroutines, execution trace) over plain HTTP on a loopback
// address, for an engineer who needs to see where a controller or an agent
// spends its time. Both binaries have it behind --pprof-listen, off unless
// given. The profiles say much about a process and cost CPU while taken,
// so only a loopback address is accepted: reach it from elsewhere through
// an SSH tunnel.
package pprofserve

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/cutover-dev/cutover/pkg/errkind"
)

// Listen binds addr, which must be a loopback address (127.0.0.0/8, ::1 or
// localhost, with a port; port 0 picks one). Any other host is
// errkind.InvalidArgument.
func Listen(addr string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("pprof address %q: %v: %w", addr, err, errkind.InvalidArgument)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("pprof address %q: only a loopback address is accepted (127.0.0.1:PORT or [::1]:PORT); use an SSH tunnel to reach it from another machine: %w",
			addr, errkind.InvalidArgument)
	}
	return net.Listen("tcp", addr)
}

// Handler returns the pprof handlers under /debug/pprof/.
func Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// Serve serves Handler on lis until ctx ends, then closes it.
func Serve(ctx context.Context, lis net.Listener) error {
	// No WriteTimeout: a CPU profile or a trace takes as long as asked.
	srv := &http.Server{Handler: Handler(), ReadHeaderTimeout: 10 * time.Second}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		<-ctx.Done()
		_ = srv.Close()
	}()
	err := srv.Serve(lis)
	<-stopped
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("pprof server: %w", err)
}
