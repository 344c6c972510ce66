// Command listenapp is the activate tests' app: it serves HTTP on every
// socket handed over by socket activation (LISTEN_FDS), answers / with the
// text of the file VERSION in its working directory and /healthz with 200,
// or 500 when the file UNHEALTHY is there; SIGTERM stops it without
// dropping a request.
package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
)

func main() {
	version, _ := os.ReadFile("VERSION")
	_, err := os.Stat("UNHEALTHY")
	healthy := err != nil
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { w.Write(version) })
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		if !healthy {
			w.WriteHeader(http.StatusInternalServerError)
		}
	})
	if os.Getenv("LISTEN_PID") != strconv.Itoa(os.Getpid()) {
		fmt.Fprintln(os.Stderr, "listenapp: no sockets handed over")
		os.Exit(2)
	}
	n, _ := strconv.Atoi(os.Getenv("LISTEN_FDS"))
	srv := &http.Server{Handler: mux}
	var conns, serving sync.WaitGroup
	srv.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			conns.Add(1)
		case http.StateClosed, http.StateHijacked:
			conns.Done()
		}
	}
	var listeners []net.Listener
	for i := range n {
		lis, err := net.FileListener(os.NewFile(uintptr(3+i), "fd"))
		if err != nil {
			fmt.Fprintln(os.Stderr, "listenapp:", err)
			os.Exit(2)
		}
		listeners = append(listeners, lis)
		serving.Go(func() { _ = srv.Serve(lis) })
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	// Stop accepting, answer what was accepted, then let it close (as
	// examples/hello does; not srv.Shutdown, which may close unanswered a
	// connection accepted just before it).
	for _, lis := range listeners {
		_ = lis.Close()
	}
	serving.Wait()
	srv.SetKeepAlivesEnabled(false)
	conns.Wait()
}
