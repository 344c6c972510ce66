package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/pkg/poll"
)

// serve answers version on l until the returned func stops it.
func serve(t *testing.T, l net.Listener, version string, status int) func() {
	t.Helper()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(status)
		fmt.Fprintln(w, version)
	})}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(l) }()
	return func() { _ = srv.Close(); <-done }
}

// TestProbeCounts closes a real server's port under the probe and opens it
// again with another version, then makes it answer 500: the probe must see
// both versions, the refused window and the failures, per phase.
func TestProbeCounts(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	stop := serve(t, l, "v1", http.StatusOK)
	quiet, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stopQuiet := serve(t, quiet, "q", http.StatusOK)
	defer stopQuiet()

	p := Start(Config{Targets: []Target{{Name: "a", URL: "http://" + addr + "/"}, {Name: "b", URL: "http://" + quiet.Addr().String() + "/"}},
		Every: 2 * time.Millisecond})
	until := func(what string, cond func(Report) bool) {
		t.Helper()
		if err := poll.Until(context.Background(), 10*time.Second, func() error {
			if cond(p.Snapshot()) {
				return nil
			}
			return errors.New(what)
		}); err != nil {
			p.Stop()
			t.Fatal(err)
		}
	}
	until("v1 answers", func(r Report) bool { return r.Answers("v1") > 0 })
	stop()
	until("refused", func(r Report) bool { return r.Counts["a"].Refused > 2 })
	l, err = net.Listen("tcp", addr)
	if err != nil {
		p.Stop()
		t.Fatalf("listen again on %s: %v", addr, err)
	}
	stop = serve(t, l, "v2", http.StatusOK)
	until("v2 answers", func(r Report) bool { return r.Answers("v2") > 0 })
	first := p.Cut()
	stop()
	l, err = net.Listen("tcp", addr)
	if err != nil {
		p.Stop()
		t.Fatalf("listen again on %s: %v", addr, err)
	}
	stop = serve(t, l, "broken", http.StatusInternalServerError)
	defer stop()
	until("500s", func(r Report) bool { return r.Counts["a"].Failed > 0 })
	second := p.Stop()
	t.Log(first.Table())
	t.Log(second.Table())

	a := first.Counts["a"]
	// A connection caught in the closing listener's backlog is reset: a
	// failure, as users would see it; so a may have a few.
	if a.Refused == 0 || a.Versions["v1"] == nil || a.Versions["v2"] == nil {
		t.Errorf("first phase on a: %+v, want refused connections, v1 and v2", a)
	}
	if a.Requests != a.OK+a.Refused+a.Failed {
		t.Errorf("first phase on a: %d requests != %d ok + %d refused + %d failed", a.Requests, a.OK, a.Refused, a.Failed)
	}
	if w := a.RefusedWindow(); w <= 0 || a.LongestGap < w {
		t.Errorf("first phase on a: refused window %s, longest gap %s; want a window, within the gap", w, a.LongestGap)
	}
	if !a.Versions["v1"].LastSent.Before(a.Versions["v2"].First) {
		t.Errorf("v1 answered a request sent at %s, after v2's first answer at %s", a.Versions["v1"].LastSent, a.Versions["v2"].First)
	}
	if b := first.Counts["b"]; b.Refused != 0 || b.Failed != 0 || b.Versions["q"] == nil {
		t.Errorf("first phase on b (never stopped): %+v, want only answers of q", b)
	}
	if first.Refused() != a.Refused {
		t.Errorf("Report.Refused() = %d, want %d", first.Refused(), a.Refused)
	}
	if second.Failed() == 0 || second.Answers("v1") != 0 {
		t.Errorf("second phase: %d failed, %d answers of v1; want failures (500) and no v1", second.Failed(), second.Answers("v1"))
	}
}
