package sdnotifytest_test

import (
	"net"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/pkg/sdnotify/sdnotifytest"
)

func send(t *testing.T, path, msg string) {
	t.Helper()
	c, err := net.Dial("unixgram", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
}

func TestWaitFor(t *testing.T) {
	s := sdnotifytest.Listen(t)
	if s.Env() != "NOTIFY_SOCKET="+s.Path {
		t.Errorf("Env() = %q", s.Env())
	}
	send(t, s.Path, "STATUS=starting")
	send(t, s.Path, "STATUS=serving\nREADY=1")
	send(t, s.Path, "STOPPING=1")
	got := s.WaitFor(t, "READY=1", 10*time.Second)
	if len(got) != 2 || got[0] != "STATUS=starting" {
		t.Errorf("WaitFor read %q, want the two messages up to READY=1", got)
	}
	if msg := s.Next(t, 10*time.Second); msg != "STOPPING=1" {
		t.Errorf("Next = %q, want STOPPING=1", msg)
	}
	if !s.Quiet(10 * time.Millisecond) {
		t.Error("Quiet = false on a socket nobody writes to")
	}
}
