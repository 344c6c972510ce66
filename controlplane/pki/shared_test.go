package pki

import (
	"errors"
	"log/slog"
	"sync"
	"testing"

	"github.com/cutover-dev/cutover/pkg/errkind"
)

// memShared is a Shared in memory (etcd in the controller).
type memShared struct {
	mu  sync.Mutex
	pem []byte
}

func (m *memShared) SharedCA() ([]byte, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.pem, m.pem != nil, nil
}

func (m *memShared) ShareCA(pem []byte) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.pem != nil {
		return false, nil
	}
	m.pem = pem
	return true, nil
}

func TestSharedCA(t *testing.T) {
	shared := &memShared{}
	open := func(dir string) (*Authority, error) {
		return Open(Config{Dir: dir, Shared: shared, Log: slog.New(slog.DiscardHandler)})
	}
	a, err := open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if shared.pem == nil {
		t.Fatal("the first controller did not share its CA")
	}
	b, err := open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if a.CAHash() != b.CAHash() {
		t.Fatalf("CAs %s and %s; want the shared one", a.CAHash(), b.CAHash())
	}
	if b, err = open(b.cfg.Dir); err != nil || b.CAHash() != a.CAHash() { // a restart
		t.Fatalf("reopened: %v, %v", b, err)
	}
	own := t.TempDir()
	if _, err := Open(Config{Dir: own, Log: slog.New(slog.DiscardHandler)}); err != nil {
		t.Fatal(err)
	}
	if _, err := open(own); !errors.Is(err, errkind.FailedPrecondition) {
		t.Fatalf("a directory with another CA: %v; want FailedPrecondition", err)
	}
}
