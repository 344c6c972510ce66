package identity

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/controlplane/pki"
	ident "github.com/cutover-dev/cutover/pkg/identity"
	"github.com/cutover-dev/cutover/pkg/poll"
	"github.com/cutover-dev/cutover/pkg/token"
)

var fe1 = ident.Agent{Environment: "production", Name: "fe-1"}

func TestEnrollThenLoad(t *testing.T) {
	f := startController(t)
	cfg := f.config(t, f.token.Join())
	id, err := Enroll(context.Background(), cfg, f.addr)
	if err != nil {
		t.Fatal(err)
	}
	if id.Agent() != fe1 || f.enrollCalls() != 1 {
		t.Fatalf("Agent = %v, enroll calls %d", id.Agent(), f.enrollCalls())
	}
	for name, mode := range map[string]os.FileMode{"": 0o700 | os.ModeDir, CertKeyName: 0o600, CACertName: 0o644} {
		fi, err := os.Stat(filepath.Join(cfg.Dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != mode {
			t.Errorf("%s: mode %v, want %v", name, fi.Mode(), mode)
		}
	}
	loaded, err := Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if loaded.Agent() != fe1 || !loaded.Certificate().Equal(id.Certificate()) || !loaded.NotAfter().Equal(id.NotAfter()) {
		t.Errorf("Load = %v %v, want what Enroll stored", loaded.Agent(), loaded.Certificate().SerialNumber)
	}
}

func TestLoadRefuses(t *testing.T) {
	f := startController(t)
	cfg := f.config(t, f.token.Join())
	if _, err := Enroll(context.Background(), cfg, f.addr); err != nil {
		t.Fatal(err)
	}
	clock := newFakeClock()
	tests := []struct {
		name    string
		mod     func(*Config)
		wantErr error
		wantMsg string
	}{
		{"another name", func(c *Config) { c.Name = "fe-2" }, nil,
			"this agent is enrolled as production/fe-1 (data dir " + cfg.Dir + "), not production/fe-2; to change it, revoke it and enroll again with a new join token"},
		{"another environment", func(c *Config) { c.Environment = "staging" }, nil, "enrolled as production/fe-1"},
		{"not enrolled", func(c *Config) { c.Dir = t.TempDir() }, ErrNotEnrolled, ""},
		{"expired", func(c *Config) { clock.Add(25 * time.Hour); c.Clock = clock.Now }, ErrExpired, "cutoverctl agent token create --environment production"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := cfg
			tt.mod(&c)
			_, err := Load(c)
			t.Logf("Load: %v", err)
			if err == nil || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("Load = %v, want %v containing %q", err, tt.wantErr, tt.wantMsg)
			}
		})
	}
}

func TestEnrollRefuses(t *testing.T) {
	f := startController(t)
	other, err := pki.Open(pki.Config{Dir: t.TempDir(), Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	otherHash := f.token
	otherHash.CAHash = other.CAHash()
	wrongSecret := token.New()
	wrongSecret.CAHash = f.auth.CAHash()
	ours, theirs := writeCA(t, f.auth), writeCA(t, other)
	tests := []struct {
		name      string
		join      string
		caFile    string
		wantErr   error
		wantMsg   string
		wantCalls int // Enroll calls the controller sees
	}{
		{"good token with CA file", f.token.Join(), ours, nil, "", 1},
		{"another controller's CA hash", otherHash.Join(), "", ident.ErrCAHashMismatch, "wrong controller, or a token from another one", 0},
		{"CA file of another CA", f.token.Join(), theirs, ident.ErrCAHashMismatch, "", 0},
		{"CA file right, token of another", otherHash.Join(), ours, ident.ErrCAHashMismatch, "", 0},
		{"unknown token", wrongSecret.Join(), "", nil, "refused join token " + wrongSecret.ID, 1},
		{"malformed token", "cutoverjoin.nope", "", token.ErrMalformed, "join token file", 0},
		{"no token file", "", "", nil, "no join token file", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := f.enrollCalls()
			cfg := f.config(t, tt.join)
			cfg.CAFile = tt.caFile
			_, err := Enroll(context.Background(), cfg, f.addr)
			t.Logf("Enroll: %v", err)
			if calls := f.enrollCalls() - before; calls != tt.wantCalls {
				t.Errorf("the controller saw %d Enroll calls, want %d", calls, tt.wantCalls)
			}
			if tt.wantErr == nil && tt.wantMsg == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("Enroll = %v, want %v containing %q", err, tt.wantErr, tt.wantMsg)
			}
			for _, secret := range []string{f.token.Secret, wrongSecret.Secret} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("the error holds a token's secret: %v", err)
				}
			}
			if _, err := os.Stat(filepath.Join(cfg.Dir, CertKeyName)); err == nil {
				t.Error("a failed enrollment stored a certificate")
			}
		})
	}
}

func TestRenew(t *testing.T) {
	f := startController(t)
	cfg := f.config(t, f.token.Join())
	id, err := Enroll(context.Background(), cfg, f.addr)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(cfg.Dir, CertKeyName)
	before, _ := os.ReadFile(path)
	old := id.Certificate()
	// RenewCertificate needs a verified client certificate: this is the
	// mTLS call through ClientTLSConfig.
	if err := id.Renew(context.Background(), f.client(t, id)); err != nil {
		t.Fatal(err)
	}
	if got := f.renewals(); len(got) != 1 || got[0] != fe1 {
		t.Errorf("the controller saw renewals from %v, want [%v]", got, fe1)
	}
	if id.Certificate().SerialNumber.Cmp(old.SerialNumber) == 0 || id.Certificate().PublicKey.(*ecdsa.PublicKey).Equal(old.PublicKey) {
		t.Error("Renew kept the certificate or the key")
	}
	after, _ := os.ReadFile(path)
	if bytes.Equal(before, after) {
		t.Error("agent.pem was not rewritten")
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode() != 0o600 {
		t.Errorf("agent.pem: %v, %v; want mode 0600", fi.Mode(), err)
	}
	loaded, err := Load(cfg)
	if err != nil || !loaded.Certificate().Equal(id.Certificate()) {
		t.Fatalf("Load after Renew = %v; want the new certificate", err)
	}
	// The new certificate authenticates too.
	if err := id.Renew(context.Background(), f.client(t, id)); err != nil {
		t.Fatal(err)
	}
}

func TestClientTLSConfigRefusesAnotherController(t *testing.T) {
	f, g := startController(t), startController(t)
	id, err := Enroll(context.Background(), f.config(t, f.token.Join()), f.addr)
	if err != nil {
		t.Fatal(err)
	}
	g.addr, f.addr = f.addr, g.addr // dial g with f's identity
	err = id.Renew(context.Background(), f.client(t, id))
	if !errors.Is(err, ident.ErrUnknownAuthority) && !strings.Contains(err.Error(), "unknown authority") {
		t.Fatalf("Renew against another controller = %v, want unknown authority", err)
	}
}

func TestRunRenewsAtTwoThirds(t *testing.T) {
	f := startController(t)
	clock := newFakeClock()
	cfg := f.config(t, f.token.Join())
	cfg.Clock = clock.Now
	id, err := Enroll(context.Background(), cfg, f.addr)
	if err != nil {
		t.Fatal(err)
	}
	c := id.Certificate()
	if want := c.NotBefore.Add(c.NotAfter.Sub(c.NotBefore) * 2 / 3); !id.RenewAt().Equal(want) {
		t.Fatalf("RenewAt = %v, want %v", id.RenewAt(), want)
	}
	// Run waits on a real timer computed from the clock: move the clock
	// past RenewAt first, so that it renews at once.
	clock.Add(id.RenewAt().Sub(clock.Now()) + time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- id.Run(ctx, f.client(t, id)) }()
	if err := poll.True(ctx, 10*time.Second, "the certificate renewed", func() bool {
		return id.Certificate().SerialNumber.Cmp(c.SerialNumber) != 0
	}); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v, want nil", err)
	}
}

func TestLoadOrEnroll(t *testing.T) {
	f := startController(t)
	clock := newFakeClock()
	cfg := f.config(t, f.token.Join())
	cfg.Clock = clock.Now
	noToken := cfg
	noToken.JoinTokenFile = ""
	if _, err := LoadOrEnroll(context.Background(), noToken, f.addr); !errors.Is(err, ErrNotEnrolled) || !strings.Contains(err.Error(), "--join-token-file") {
		t.Fatalf("without a token: %v, want ErrNotEnrolled asking for one", err)
	}
	steps := []struct {
		name      string
		cfg       Config
		advance   time.Duration
		wantErr   error
		wantCalls int
	}{
		{"enrolls", cfg, 0, nil, 1},
		{"loads", cfg, 0, nil, 1},
		{"loads without a token", noToken, 0, nil, 1},
		{"expired without a token", noToken, 25 * time.Hour, ErrExpired, 1},
		{"expired with a token enrolls again", cfg, 0, nil, 2},
	}
	for _, s := range steps {
		clock.Add(s.advance)
		_, err := LoadOrEnroll(context.Background(), s.cfg, f.addr)
		if !errors.Is(err, s.wantErr) || (s.wantErr == nil && err != nil) {
			t.Fatalf("%s: err = %v, want %v", s.name, err, s.wantErr)
		}
		if f.enrollCalls() != s.wantCalls {
			t.Fatalf("%s: %d Enroll calls, want %d", s.name, f.enrollCalls(), s.wantCalls)
		}
	}
}

// TestLoadOrEnrollRetrying: a controller that answers Unavailable (too
// busy, restarting) is asked again after a backoff until it enrolls the
// agent; a refused token is not asked again.
func TestLoadOrEnrollRetrying(t *testing.T) {
	tests := []struct {
		name      string
		busy      int
		join      func(f *fakeController) string
		wantErr   bool
		wantCalls int
	}{
		{"enrolls at once", 0, func(f *fakeController) string { return f.token.Join() }, false, 1},
		{"busy twice, then enrolls", 2, func(f *fakeController) string { return f.token.Join() }, false, 3},
		{"a refused token is not retried", 0, func(f *fakeController) string {
			other := token.New()
			other.CAHash = f.token.CAHash
			return other.Join()
		}, true, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := startController(t)
			f.busy = tc.busy
			cfg := f.config(t, tc.join(f))
			id, err := LoadOrEnrollRetrying(context.Background(), cfg, []string{f.addr}, time.Millisecond, 10*time.Millisecond)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want an error: %v", err, tc.wantErr)
			}
			if err == nil && id.Agent() != fe1 {
				t.Errorf("enrolled as %v, want %v", id.Agent(), fe1)
			}
			if f.enrollCalls() != tc.wantCalls {
				t.Errorf("%d Enroll calls, want %d", f.enrollCalls(), tc.wantCalls)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			for i, k := range f.keys { // the controller answers a lost answer again only for the same key
				if k != f.keys[0] {
					t.Errorf("Enroll call %d asked for another key than the first", i+1)
				}
			}
		})
	}
}

// writeCA writes a's CA certificate to a file and returns its name.
func writeCA(t *testing.T, a *pki.Authority) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(path, pemBlock("CERTIFICATE", a.CACert().Raw), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
