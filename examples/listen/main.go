// Command listen is the application of the socket hand-over tests and of
// the switch benchmark (e2e, internal/bench): an HTTP server that serves on
// every socket it inherits by systemd socket activation (LISTEN_FDS, as the
// agent hands them over for an app with run.listen), or, without
// LISTEN_FDS, on the address of --listen (default 127.0.0.1:$PORT), as an
// app without run.listen does.
//
// It answers
//
//	/         its version: the file VERSION in its working directory (the
//	          release directory), else CUTOVER_RELEASE_ID
//	/pid      its process id
//	/healthz  200, or 500 while a file UNHEALTHY exists in its working
//	          directory (so a release whose health check fails is one file away),
//	          or 503 while $TMPDIR/cutover-listen-hold-$PORT exists (so a test
//	          can keep one front-end's new process from turning healthy)
//
// On SIGTERM or SIGINT it stops accepting, waits until every connection it
// accepted has sent its first request, then finishes the requests in flight
// (http.Server.Shutdown) and exits. The wait matters when another process
// serves the same sockets: Shutdown alone drops, unanswered, a request it
// reads after it began on a connection accepted just before (net/http's
// conn.serve returns when the server is shutting down), which a client that
// opened that connection for the request sees as EOF.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
)

// shutdownGrace bounds how long a stop waits for the requests in flight.
const shutdownGrace = 10 * time.Second

func main() {
	log.SetPrefix("listen: ")
	log.SetFlags(log.Lmicroseconds)
	addr := flag.String("listen", "", "address to listen on without LISTEN_FDS (default 127.0.0.1:$PORT)")
	flag.Parse()
	if err := run(*addr); err != nil {
		log.Fatal(err)
	}
}

func run(addr string) error {
	dir, err := os.Getwd()
	if err != nil {
		return err
	}
	version := readVersion(dir)
	lis, how, err := listeners(addr)
	if err != nil {
		return err
	}
	fresh := &freshConns{conns: map[net.Conn]bool{}}
	srv := &http.Server{Handler: handler(dir, version), ReadHeaderTimeout: 5 * time.Second, ConnState: fresh.track}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	served := make(chan error, len(lis))
	for i, l := range lis {
		lis[i] = &onceCloseListener{Listener: l}
		go func() { served <- srv.Serve(lis[i]) }()
	}
	log.Printf("version %s, pid %d, serving on %s", version, os.Getpid(), how)

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	log.Printf("version %s, pid %d: stopping, finishing the requests in flight", version, os.Getpid())
	shutdown, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	for _, l := range lis {
		_ = l.Close() // only this process's descriptor: the socket stays open in the others
	}
	// Serve returns once its last accepted connection is tracked as fresh.
	for range lis {
		select {
		case <-served:
		case <-shutdown.Done():
		}
	}
	fresh.wait(shutdown)
	if err := srv.Shutdown(shutdown); err != nil {
		return fmt.Errorf("stop: %w", err)
	}
	log.Printf("version %s, pid %d: stopped", version, os.Getpid())
	return nil
}

// readVersion returns the content of dir/VERSION, else CUTOVER_RELEASE_ID,
// else "unknown".
func readVersion(dir string) string {
	if b, err := os.ReadFile(filepath.Join(dir, "VERSION")); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b))
	}
	if id := os.Getenv("CUTOVER_RELEASE_ID"); id != "" {
		return id
	}
	return "unknown"
}

// listeners returns the inherited sockets, or, when there are none, one
// listener on addr (127.0.0.1:$PORT when empty), and says which.
func listeners(addr string) ([]net.Listener, string, error) {
	inherited := os.Getenv("LISTEN_FDS") != ""
	named, err := activation.ListenersWithNames()
	if err != nil {
		return nil, "", fmt.Errorf("inherited sockets: %w", err)
	}
	var lis []net.Listener
	var names []string
	for name, ls := range named {
		for _, l := range ls {
			lis = append(lis, l)
			names = append(names, fmt.Sprintf("%s (%s)", l.Addr(), name))
		}
	}
	if inherited {
		if len(lis) == 0 {
			// LISTEN_PID names another process (a shell that did not exec?),
			// or the descriptors are not listening sockets: do not quietly
			// listen on a port the agent holds.
			return nil, "", errors.New("LISTEN_FDS is set but no listening socket is mine (LISTEN_PID " + os.Getenv("LISTEN_PID") + ", my pid " + strconv.Itoa(os.Getpid()) + ")")
		}
		return lis, "inherited sockets " + strings.Join(names, ", "), nil
	}
	if addr == "" {
		port := os.Getenv("PORT")
		if port == "" {
			return nil, "", errors.New("no LISTEN_FDS, no --listen and no PORT: nothing to listen on")
		}
		addr = "127.0.0.1:" + port
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", err
	}
	return []net.Listener{l}, "its own socket " + l.Addr().String(), nil
}

// handler serves /, /pid and /healthz.
func handler(dir, version string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, version)
	})
	mux.HandleFunc("/pid", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, os.Getpid())
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		if _, err := os.Stat(filepath.Join(dir, "UNHEALTHY")); err == nil {
			http.Error(w, "unhealthy: "+version, http.StatusInternalServerError)
			return
		}
		if _, err := os.Stat(holdFile(os.Getenv("PORT"))); err == nil {
			http.Error(w, "held by "+holdFile(os.Getenv("PORT")), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	return mux
}

// freshConns counts the connections that have not sent their first
// request yet (http.StateNew).
type freshConns struct {
	mu    sync.Mutex
	conns map[net.Conn]bool
}

// track is the server's ConnState hook.
func (f *freshConns) track(c net.Conn, state http.ConnState) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if state == http.StateNew {
		f.conns[c] = true
	} else {
		delete(f.conns, c)
	}
}

// wait returns once no connection is fresh, or when ctx ends.
func (f *freshConns) wait(ctx context.Context) {
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		f.mu.Lock()
		n := len(f.conns)
		f.mu.Unlock()
		if n == 0 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// onceCloseListener closes its listener once, so that Shutdown does not
// fail on a listener closed before it.
type onceCloseListener struct {
	net.Listener
	once sync.Once
	err  error
}

// Close closes the listener the first time.
func (l *onceCloseListener) Close() error {
	l.once.Do(func() { l.err = l.Listener.Close() })
	return l.err
}

// holdFile is the file whose existence makes /healthz answer 503 for the
// app given port (PORT).
func holdFile(port string) string {
	return filepath.Join(os.TempDir(), "cutover-listen-hold-"+port)
}
