// Command hello is cutover's example application: an HTTP server that
// answers its version, read at start from the file VERSION in its working
// directory, on 127.0.0.1:$PORT. /healthz answers 200, or 500 when the
// version text contains "unhealthy". SIGTERM stops it gracefully.
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
	port := os.Getenv("PORT")
	if port == "" {
		return errors.New("PORT is not set: start me with PORT=8080")
	}
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

	lis, err := listen("127.0.0.1:"+port, 5*time.Second)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	log.Printf("version %s listening on %s", version, lis.Addr())

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
