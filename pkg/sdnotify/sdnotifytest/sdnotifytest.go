// Package sdnotifytest plays systemd's side of the notify protocol in tests:
// it listens on a unixgram socket like the one systemd passes in
// NOTIFY_SOCKET, and waits for the messages a daemon sends to it (READY=1,
// STOPPING=1, WATCHDOG=1, STATUS=…).
//
// For a daemon started as a child process:
//
//	sock := sdnotifytest.Listen(t)
//	cmd.Env = append(os.Environ(), sock.Env())
//	... start it ...
//	sock.WaitFor(t, "READY=1", 30*time.Second)
//
// For code in the test's own process, t.Setenv("NOTIFY_SOCKET", sock.Path).
package sdnotifytest

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Socket is a listening notify socket.
type Socket struct {
	// Path is the socket's file name, the value for NOTIFY_SOCKET.
	Path string
	conn *net.UnixConn
}

// Listen opens a notify socket in a fresh temporary directory (short, since
// socket paths are limited to 108 bytes); both are removed when the test
// ends.
func Listen(t testing.TB) *Socket {
	t.Helper()
	dir, err := os.MkdirTemp("", "sdn")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatalf("listen on notify socket %s: %v", path, err)
	}
	t.Cleanup(func() { conn.Close() })
	return &Socket{Path: path, conn: conn}
}

// Env returns "NOTIFY_SOCKET=<Path>", for a child process's environment.
func (s *Socket) Env() string { return "NOTIFY_SOCKET=" + s.Path }

// Next returns the next message (one datagram, possibly several
// newline-separated assignments), or fails the test if none comes within
// timeout.
func (s *Socket) Next(t testing.TB, timeout time.Duration) string {
	t.Helper()
	msg, err := s.next(timeout)
	if err != nil {
		t.Fatalf("no message on notify socket %s within %v: %v", s.Path, timeout, err)
	}
	return msg
}

// WaitFor reads messages until one holds the assignment want (such as
// "READY=1") on a line of its own, and returns every message read, that one
// included. It fails the test, listing what it read, if none does within
// timeout.
func (s *Socket) WaitFor(t testing.TB, want string, timeout time.Duration) []string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var got []string
	for {
		msg, err := s.next(time.Until(deadline))
		if err != nil {
			t.Fatalf("no %q on notify socket %s within %v (got %q): %v", want, s.Path, timeout, got, err)
		}
		got = append(got, msg)
		for _, line := range strings.Split(msg, "\n") {
			if line == want {
				return got
			}
		}
	}
}

// Quiet reports whether no message arrives within d.
func (s *Socket) Quiet(d time.Duration) bool {
	_, err := s.next(d)
	return err != nil
}

func (s *Socket) next(timeout time.Duration) (string, error) {
	if timeout <= 0 {
		return "", errors.New("timed out")
	}
	if err := s.conn.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return "", err
	}
	buf := make([]byte, 64<<10)
	n, err := s.conn.Read(buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}
