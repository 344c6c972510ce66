package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/pkg/identity"
)

// fakeClock is a clock that tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Now()} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// openTest opens an Authority in a new directory.
func openTest(t testing.TB, mod func(*Config)) (*Authority, Config) {
	t.Helper()
	cfg := Config{Dir: t.TempDir() + "/tls", Log: quietLog(), Hosts: []string{"ctl.example.com", "10.0.0.7"}}
	if mod != nil {
		mod(&cfg)
	}
	a, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a, cfg
}

// newCSR returns a DER CSR for a new P-256 key that asks for names.
func newCSR(t testing.TB, key *ecdsa.PrivateKey) []byte {
	t.Helper()
	if key == nil {
		var err error
		if key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			t.Fatal(err)
		}
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject:  pkix.Name{CommonName: "admin"},
		DNSNames: []string{"evil.example.com"},
	}, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

var testAgent = identity.Agent{Environment: "production", Name: "fe-1"}
