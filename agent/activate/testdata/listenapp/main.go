// Command listenapp is the activate tests' app: it serves HTTP on every
// socket handed over by socket activation (LISTEN_FDS), answers / with the
// text of the file VERSION in its working directory and /healthz with 200,
// or 500 when the file UNHEALTHY is there; SIGTERM stops it gracefully.
package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
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
	for i := range n {
		lis, err := net.FileListener(os.NewFile(uintptr(3+i), "fd"))
		if err != nil {
			fmt.Fprintln(os.Stderr, "listenapp:", err)
			os.Exit(2)
		}
		go srv.Serve(lis)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	_ = srv.Shutdown(context.Background())
}
