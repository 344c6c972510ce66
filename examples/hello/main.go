// Command hello is cutover's example application: an HTTP server that
// answers its version, read at start from the file VERSION in its working
// directory. It serves on the sockets the agent hands it by systemd socket
// activation (LISTEN_FDS, with cutover.yaml run.listen: the new version
// starts beside the old one and no request is refused), else on
// 127.0.0.1:$PORT. /healthz answers 200, or 500 when the version text
// contains "unhealthy". SIGTERM stops it gracefully: it stops accepting and
// finishes the requests it has.
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	log.SetPrefix("hello: ")
	log.SetFlags(0)
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

func run() error {
	b, err := os.ReadFile("VERSION")
	if err != nil {
		return fmt.Errorf("read my version: %w", err)
	}
	version := strings.TrimSpace(string(b))
	healthy := !strings.Contains(version, "unhealthy")

	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintln(w, version)
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		if !healthy {
			http.Error(w, "unhealthy: "+version, http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "ok")
	})

	listeners, err := inherited()
	if err != nil {
		return err
	}
	if len(listeners) == 0 {
		port := os.Getenv("PORT")
		if port == "" {
			return errors.New("PORT is not set and no socket was handed over (LISTEN_FDS): start me with PORT=8080")
		}
		lis, err := listen("127.0.0.1:"+port, 5*time.Second)
		if err != nil {
			return err
		}
		listeners = append(listeners, lis)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	served := make(chan error, len(listeners))
	for _, lis := range listeners {
		go func() { served <- srv.Serve(lis) }()
		log.Printf("version %s serving on %s", version, lis.Addr())
	}

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		return fmt.Errorf("stop: %w", err)
	}
	log.Printf("version %s stopped", version)
	return nil
}

// listen retries for a while when the address is still held, for example
// by the previous version that is shutting down.
func listen(addr string, patience time.Duration) (net.Listener, error) {
	deadline := time.Now().Add(patience)
	for {
		lis, err := net.Listen("tcp", addr)
		if err == nil || time.Now().After(deadline) {
			return lis, err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// inherited returns the listening sockets handed over by systemd socket
// activation: LISTEN_PID is this process and LISTEN_FDS counts the fds
// from 3 (the last one, named cutover-health in LISTEN_FDNAMES, is the
// private socket the agent checks this process's health on: served like
// the others). None when they are not for this process.
func inherited() ([]net.Listener, error) {
	if os.Getenv("LISTEN_PID") != strconv.Itoa(os.Getpid()) {
		return nil, nil
	}
	n, err := strconv.Atoi(os.Getenv("LISTEN_FDS"))
	if err != nil || n <= 0 {
		return nil, nil
	}
	names := strings.Split(os.Getenv("LISTEN_FDNAMES"), ":")
	var out []net.Listener
	for i := range n {
		name := fmt.Sprintf("fd%d", 3+i)
		if i < len(names) && names[i] != "" {
			name = names[i]
		}
		f := os.NewFile(uintptr(3+i), name)
		lis, err := net.FileListener(f)
		_ = f.Close() // FileListener holds its own copy
		if err != nil {
			return nil, fmt.Errorf("socket %s handed over: %w", name, err)
		}
		out = append(out, lis)
	}
	return out, nil
}
