package localcluster

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestPoll(t *testing.T) {
	errNotYet := errors.New("not yet")
	errFatal := errors.New("fatal")
	tests := []struct {
		name      string
		results   []error
		timeout   time.Duration
		wantErr   error
		wantCalls int
	}{
		{"at once", []error{nil}, time.Second, nil, 1},
		{"third time", []error{errNotYet, errNotYet, nil}, 5 * time.Second, nil, 3},
		{"permanent stops", []error{errNotYet, Permanent(errFatal), nil}, 5 * time.Second, errFatal, 2},
		{"times out", nil, 3 * PollEvery, errNotYet, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			err := Poll(context.Background(), tt.timeout, func() error {
				calls++
				if calls <= len(tt.results) {
					return tt.results[calls-1]
				}
				return errNotYet
			})
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Errorf("Poll = %v, want %v", err, tt.wantErr)
			}
			if tt.wantCalls >= 0 && calls != tt.wantCalls {
				t.Errorf("cond called %d times, want %d", calls, tt.wantCalls)
			}
		})
	}
}

func TestCopyApp(t *testing.T) {
	src, dst := t.TempDir(), filepath.Join(t.TempDir(), "app")
	files := map[string]os.FileMode{"main.go": 0o644, "run.sh": 0o755, "sub/x.txt": 0o600, "bin/old": 0o755}
	for name, mode := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(src, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, name), []byte(name), mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := CopyApp(src, dst, "v7"); err != nil {
		t.Fatal(err)
	}
	for name, mode := range files {
		info, err := os.Stat(filepath.Join(dst, name))
		if name == "bin/old" {
			if err == nil {
				t.Errorf("build output %s was copied", name)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if info.Mode().Perm() != mode {
			t.Errorf("%s: mode %s, want %s", name, info.Mode().Perm(), mode)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "VERSION")); string(b) != "v7\n" {
		t.Errorf("VERSION = %q, want v7", b)
	}
}
