package sdnotify_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/pkg/errkind"
	"github.com/cutover-dev/cutover/pkg/sdnotify"
	"github.com/cutover-dev/cutover/pkg/sdnotify/sdnotifytest"
)

// listen opens a notify socket and points NOTIFY_SOCKET at it.
func listen(t *testing.T) *sdnotifytest.Socket {
	t.Helper()
	s := sdnotifytest.Listen(t)
	t.Setenv("NOTIFY_SOCKET", s.Path)
	return s
}

// watchdogReturns runs Watchdog with a context that is never cancelled and
// returns its result, failing the test if it does not return by itself.
func watchdogReturns(t *testing.T) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- sdnotify.Watchdog(context.Background()) }()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("Watchdog did not return at once")
		return nil
	}
}

func TestNotify(t *testing.T) {
	tests := []struct {
		name string
		call func() error
		want string
	}{
		{"ready", sdnotify.Ready, "READY=1"},
		{"stopping", sdnotify.Stopping, "STOPPING=1"},
		{"status", func() error { return sdnotify.Status("serving on 127.0.0.1:7070") }, "STATUS=serving on 127.0.0.1:7070"},
		{"status on one line", func() error { return sdnotify.Status("a\nREADY=1") }, "STATUS=a READY=1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn := listen(t)
			if err := tt.call(); err != nil {
				t.Fatal(err)
			}
			if got := conn.Next(t, 10*time.Second); got != tt.want {
				t.Errorf("datagram %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNoSocketIsNoOp(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	t.Setenv("WATCHDOG_USEC", "1000")
	for _, f := range []func() error{sdnotify.Ready, sdnotify.Stopping, func() error { return sdnotify.Status("x") }} {
		if err := f(); err != nil {
			t.Errorf("without NOTIFY_SOCKET: %v, want nil", err)
		}
	}
	if err := watchdogReturns(t); err != nil {
		t.Errorf("Watchdog without NOTIFY_SOCKET: %v", err)
	}
}

func TestUnreachableSocket(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "absent"))
	err := sdnotify.Ready()
	if !errors.Is(err, errkind.Unavailable) {
		t.Fatalf("Ready to an absent socket = %v, want Unavailable", err)
	}
}

// startWatchdog runs WatchdogCheck(ctx, check) in a goroutine; the function
// it returns cancels ctx and fails the test unless WatchdogCheck then returns
// nil.
func startWatchdog(t *testing.T, check func(context.Context) error) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sdnotify.WatchdogCheck(ctx, check) }()
	return func() {
		t.Helper()
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("WatchdogCheck after cancel: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("WatchdogCheck did not return after its context was cancelled")
		}
	}
}

func TestWatchdogPings(t *testing.T) {
	conn := listen(t)
	t.Setenv("WATCHDOG_USEC", "20000") // 20ms: pings every 10ms
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	stop := startWatchdog(t, nil)
	for i := range 3 {
		if got := conn.Next(t, 10*time.Second); got != "WATCHDOG=1" {
			t.Fatalf("ping %d: %q, want WATCHDOG=1", i, got)
		}
	}
	stop()
}

func TestWatchdogCheck(t *testing.T) {
	conn := listen(t)
	t.Setenv("WATCHDOG_USEC", "20000")
	t.Setenv("WATCHDOG_PID", "")
	var healthy atomic.Bool
	check := func(context.Context) error {
		if healthy.Load() {
			return nil
		}
		return errors.New("store does not answer\nin time")
	}
	stop := startWatchdog(t, check)
	if got := conn.Next(t, 10*time.Second); got != "STATUS=unhealthy, not pinging the watchdog: store does not answer in time" {
		t.Fatalf("while unhealthy: %q, want the error as status and no ping", got)
	}
	healthy.Store(true)
	conn.WaitFor(t, "WATCHDOG=1", 10*time.Second)
	stop()
}

func TestWatchdogOff(t *testing.T) {
	tests := []struct {
		name, usec, pid string
		wantKind        error
	}{
		{name: "no WatchdogSec", usec: ""},
		{name: "another process's watchdog", usec: "20000", pid: strconv.Itoa(os.Getpid() + 1)},
		{name: "malformed", usec: "soon", wantKind: errkind.InvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn := listen(t)
			t.Setenv("WATCHDOG_USEC", tt.usec)
			t.Setenv("WATCHDOG_PID", tt.pid)
			err := watchdogReturns(t)
			if tt.wantKind == nil && err != nil {
				t.Fatalf("Watchdog: %v, want nil", err)
			}
			if tt.wantKind != nil && !errors.Is(err, tt.wantKind) {
				t.Fatalf("Watchdog: %v, want %v", err, tt.wantKind)
			}
			// And it sent nothing.
			if !conn.Quiet(10 * time.Millisecond) {
				t.Fatal("Watchdog sent a message, want nothing")
			}
		})
	}
}

func TestFilterEnv(t *testing.T) {
	in := []string{"PATH=/bin", "NOTIFY_SOCKET=/run/x", "WATCHDOG_USEC=1", "WATCHDOG_PID=2", "PORT=8080", "NOTIFY_SOCKETS=keep"}
	want := []string{"PATH=/bin", "PORT=8080", "NOTIFY_SOCKETS=keep"}
	if got := sdnotify.FilterEnv(in); !reflect.DeepEqual(got, want) {
		t.Errorf("FilterEnv = %q, want %q", got, want)
	}
	if in[1] != "NOTIFY_SOCKET=/run/x" {
		t.Error("FilterEnv changed its argument")
	}
}
