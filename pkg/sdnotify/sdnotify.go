// Package sdnotify tells systemd how a daemon is doing, for units with
// Type=notify: READY=1 once it serves, STOPPING=1 when it begins to shut
// down, STATUS= lines for `systemctl status`, and WATCHDOG=1 pings while
// WatchdogSec= is set. It is a thin layer over
// github.com/coreos/go-systemd/v22/daemon.
//
// Every call is a no-op returning nil when NOTIFY_SOCKET is unset, that is
// when the daemon does not run under systemd (or under a unit that is not
// Type=notify), so the daemons call it unconditionally.
//
// A daemon that starts other processes should give them FilterEnv(os.Environ())
// so that they do not inherit the daemon's notify socket and watchdog.
package sdnotify

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"

	"github.com/cutover-dev/cutover/pkg/errkind"
)

// Ready tells systemd that the daemon has started and serves (READY=1);
// `systemctl start` returns then.
func Ready() error { return notify(daemon.SdNotifyReady) }

// Stopping tells systemd that the daemon begins to shut down (STOPPING=1).
func Stopping() error { return notify(daemon.SdNotifyStopping) }

// Status sets the one-line status that `systemctl status` shows. Line breaks
// in s become spaces.
func Status(s string) error {
	return notify("STATUS=" + oneLine(s))
}

func oneLine(s string) string {
	return strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s)
}

// Watchdog sends WATCHDOG=1 at once and then every half of the unit's
// WatchdogSec= (from WATCHDOG_USEC), until ctx is done; it then returns nil.
// It returns nil at once when NOTIFY_SOCKET or WATCHDOG_USEC is unset, or
// when WATCHDOG_PID names another process. It returns an
// errkind.InvalidArgument error if WATCHDOG_USEC is malformed, and an
// errkind.Unavailable error if a ping cannot be sent: systemd would kill the
// daemon soon anyway, so the daemon should stop cleanly instead.
func Watchdog(ctx context.Context) error { return WatchdogCheck(ctx, nil) }

// WatchdogCheck is Watchdog with a health check: before each ping it calls
// check (if not nil), and pings only if check returns nil. When check fails
// it sets the status line to the error instead, so that `systemctl status`
// shows why; if check keeps failing for WatchdogSec, systemd kills and
// restarts the daemon. check should be quick and bounded, for example a read
// transaction on the daemon's store.
func WatchdogCheck(ctx context.Context, check func(context.Context) error) error {
	if os.Getenv("NOTIFY_SOCKET") == "" {
		return nil
	}
	interval, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		return errkind.New(errkind.InvalidArgument, fmt.Sprintf(
			"systemd watchdog: %v; no watchdog pings are sent; check WatchdogSec= in the unit", err))
	}
	if interval <= 0 {
		return nil
	}
	period := max(interval/2, time.Millisecond)
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		msg := daemon.SdNotifyWatchdog
		if check != nil {
			if err := check(ctx); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				msg = "STATUS=unhealthy, not pinging the watchdog: " + oneLine(err.Error())
			}
		}
		if err := notify(msg); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// FilterEnv returns env without the variables through which systemd talks to
// this daemon (NOTIFY_SOCKET, WATCHDOG_USEC, WATCHDOG_PID), for the
// environment of a child process. env itself is not changed.
func FilterEnv(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID":
			continue
		}
		out = append(out, kv)
	}
	return out
}

func notify(state string) error {
	if _, err := daemon.SdNotify(false, state); err != nil {
		name, _, _ := strings.Cut(state, "=")
		return errkind.New(errkind.Unavailable, fmt.Sprintf(
			"tell systemd %s through NOTIFY_SOCKET %s: %v; the daemon goes on, but systemd may consider it not ready or hung",
			name, os.Getenv("NOTIFY_SOCKET"), err))
	}
	return nil
}
