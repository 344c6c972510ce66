package pprofserve

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/cutover-dev/cutover/pkg/errkind"
)

func TestListenLoopbackOnly(t *testing.T) {
	for _, tc := range []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:0", true},
		{"localhost:0", true},
		{"[::1]:0", true},
		{"0.0.0.0:0", false},
		{":0", false},
		{"192.0.2.1:0", false},
		{"example.com:0", false},
		{"127.0.0.1", false},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			lis, err := Listen(tc.addr)
			if lis != nil {
				lis.Close()
			}
			if tc.ok && err != nil && !strings.Contains(err.Error(), "cannot assign") && !strings.Contains(err.Error(), "address family") {
				t.Fatalf("Listen(%q) = %v, want a listener", tc.addr, err)
			}
			if !tc.ok && !errors.Is(err, errkind.InvalidArgument) {
				t.Fatalf("Listen(%q) = %v, want InvalidArgument", tc.addr, err)
			}
		})
	}
}

func TestServe(t *testing.T) {
	lis, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, lis) }()
	resp, err := http.Get("http://" + lis.Addr().String() + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "goroutine profile") {
		t.Fatalf("goroutine profile: %s %q", resp.Status, body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve after cancel = %v, want nil", err)
	}
}
