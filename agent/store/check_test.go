package store

import (
	"testing"
)

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := Check(dir); err != nil {
		t.Fatalf("a file just written: %v", err)
	}
	// (A file damaged at random makes bbolt panic in a goroutine of its
	// own while it opens, which no caller can recover: not tested here.)
	if err := Check(t.TempDir()); err == nil {
		t.Error("a missing file passes the check")
	}
}
