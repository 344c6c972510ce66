package process

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
)

// The test binary is also the Go app of the socket tests: run with
// CUTOVER_PROCESS_TEST_APP=go, it takes its sockets with go-systemd's
// activation.Files (which checks LISTEN_PID against its pid) and serves
// HTTP on each until SIGTERM (graceful, exit 0) or SIGUSR1 (graceful,
// exit 3: a crash).
func TestMain(m *testing.M) {
	if os.Getenv("CUTOVER_PROCESS_TEST_APP") == "go" {
		os.Exit(serveGoApp())
	}
	os.Exit(m.Run())
}

// appEnv is what the test apps answer on /env.
type appEnv struct {
	PID       int      `json:"pid"`
	ListenFDs string   `json:"listen_fds"`
	ListenPID string   `json:"listen_pid"`
	FDNames   string   `json:"listen_fdnames"`
	Names     []string `json:"names"`
	Release   string   `json:"release"`
}

func serveGoApp() int {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGUSR1)
	env := appEnv{PID: os.Getpid(), ListenFDs: os.Getenv("LISTEN_FDS"), ListenPID: os.Getenv("LISTEN_PID"),
		FDNames: os.Getenv("LISTEN_FDNAMES"), Release: os.Getenv("CUTOVER_RELEASE_ID")}
	files := activation.Files(true)
	if len(files) == 0 {
		fmt.Fprintln(os.Stderr, "no sockets from activation.Files")
		return 2
	}
	for _, f := range files {
		env.Names = append(env.Names, f.Name())
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/env", func(w http.ResponseWriter, _ *http.Request) { _ = json.NewEncoder(w).Encode(env) })
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintf(w, "%s %d", env.Release, env.PID) })
	var conns, serving sync.WaitGroup
	srv := &http.Server{Handler: mux, ConnState: func(_ net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			conns.Add(1)
		case http.StateClosed, http.StateHijacked:
			conns.Done()
		}
	}}
	var listeners []net.Listener
	for _, f := range files {
		l, err := net.FileListener(f)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		_ = f.Close() // as activation.Listeners does: the socket lives on in l, at another fd
		listeners = append(listeners, l)
		serving.Go(func() { _ = srv.Serve(l) })
	}
	sig := <-sigs
	// A graceful stop that drops no request: stop accepting (the socket
	// stays open in the agent and the new process), then finish every
	// connection accepted. Not srv.Shutdown: a connection accepted before
	// it whose request is read after it is closed unanswered.
	for _, l := range listeners {
		_ = l.Close()
	}
	serving.Wait() // every accepted connection is counted
	srv.SetKeepAlivesEnabled(false)
	conns.Wait()
	if sig == syscall.SIGUSR1 {
		return 3
	}
	return 0
}

// pythonApp is the python test app (stdlib only): it checks the protocol
// by hand and serves /env on every socket.
const pythonApp = `
import json, os, signal, socket, threading
from http.server import HTTPServer, BaseHTTPRequestHandler
n = int(os.environ["LISTEN_FDS"])
assert int(os.environ["LISTEN_PID"]) == os.getpid(), "LISTEN_PID is not my pid"
info = {"pid": os.getpid(), "listen_fds": os.environ["LISTEN_FDS"], "listen_pid": os.environ["LISTEN_PID"],
        "listen_fdnames": os.environ["LISTEN_FDNAMES"], "names": os.environ["LISTEN_FDNAMES"].split(":"),
        "release": os.environ["CUTOVER_RELEASE_ID"]}
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps(info).encode() if self.path == "/env" else ("%s %d" % (info["release"], info["pid"])).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
for i in range(n):
    srv = HTTPServer(("", 0), H, bind_and_activate=False)
    srv.socket.close()
    srv.socket = socket.socket(fileno=3 + i)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
signal.pause()
`

// goAppCommand is the run.command of the Go test app.
func goAppCommand(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return "'" + exe + "'"
}

// goAppEnv is the Config.Env that makes the test binary the Go app.
var goAppEnv = map[string]string{"CUTOVER_PROCESS_TEST_APP": "go"}

// client speaks HTTP without keep-alive (every request a new connection,
// accepted from the listening socket), over tcp or to a unix socket path.
func client(unixPath string) *http.Client {
	tr := &http.Transport{DisableKeepAlives: true}
	if unixPath != "" {
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", unixPath)
		}
	}
	return &http.Client{Transport: tr, Timeout: 20 * time.Second}
}

// get returns the body of GET path on addr (host:port, or a unix socket path).
func get(addr, path string) (string, error) {
	c, host := client(""), addr
	if strings.HasPrefix(addr, "/") {
		c, host = client(addr), "app"
	}
	resp, err := c.Get("http://" + host + path)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("status %s", resp.Status)
	}
	return string(b), err
}

func getEnv(t *testing.T, addr string) appEnv {
	t.Helper()
	var env appEnv
	body, err := get(addr, "/env")
	if err == nil {
		err = json.Unmarshal([]byte(body), &env)
	}
	if err != nil {
		t.Fatalf("GET %s/env: %v", addr, err)
	}
	return env
}

// waitServes waits until addr answers.
func waitServes(t *testing.T, addr string) {
	t.Helper()
	waitFor(t, addr+" serves", func() bool { _, err := get(addr, "/"); return err == nil })
}

// hammer sends requests to addr, one connection each, until stopped, and
// counts the failures.
type hammer struct {
	stop chan struct{}
	done chan struct{}

	mu    sync.Mutex
	n     int
	fails []error
	last  string
}

func startHammer(t *testing.T, addr string) *hammer {
	h := &hammer{stop: make(chan struct{}), done: make(chan struct{})}
	t.Cleanup(func() {
		select {
		case <-h.stop:
		default:
			close(h.stop)
		}
		<-h.done
	})
	go func() {
		defer close(h.done)
		for {
			select {
			case <-h.stop:
				return
			default:
			}
			body, err := get(addr, "/")
			h.mu.Lock()
			h.n++
			if err != nil {
				h.fails = append(h.fails, err)
			} else {
				h.last = body
			}
			h.mu.Unlock()
		}
	}()
	return h
}

// lastRelease is the release of the last answer.
func (h *hammer) lastRelease() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	rel, _, _ := strings.Cut(h.last, " ")
	return rel
}

func (h *hammer) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n
}

// finish stops h and fails t on any failed request.
func (h *hammer) finish(t *testing.T) {
	t.Helper()
	select {
	case <-h.stop:
	default:
		close(h.stop)
	}
	<-h.done
	if len(h.fails) > 0 {
		t.Errorf("%d of %d requests failed; first: %v", len(h.fails), h.n, h.fails[0])
	}
	if h.n == 0 {
		t.Error("no request was sent")
	}
}

// pidOf parses the pid of a "release pid" answer.
func pidOf(body string) int {
	_, p, _ := strings.Cut(body, " ")
	n, _ := strconv.Atoi(p)
	return n
}

// shortTempDir is a temporary directory short enough for unix socket paths.
func shortTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "cp")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return filepath.Clean(dir)
}
