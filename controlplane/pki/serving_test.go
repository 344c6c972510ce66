package pki

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/pkg/identity"
	"github.com/cutover-dev/cutover/pkg/poll"
)

func TestServingCert(t *testing.T) {
	clock := newFakeClock()
	a, _ := openTest(t, func(c *Config) { c.Clock = clock.Now; c.ServingTTL = 48 * time.Hour })
	tc, err := a.ServerTLSConfig().GetCertificate(&tls.ClientHelloInfo{})
	if err != nil {
		t.Fatal(err)
	}
	leaf := tc.Leaf
	if !identity.IsController(leaf) || len(leaf.URIs) != 1 {
		t.Errorf("URIs = %v, want only %s", leaf.URIs, identity.ControllerURI)
	}
	for _, h := range []string{"localhost", "ctl.example.com"} {
		if !slices.Contains(leaf.DNSNames, h) {
			t.Errorf("DNSNames = %v, missing %s", leaf.DNSNames, h)
		}
	}
	for _, h := range []string{"127.0.0.1", "10.0.0.7", "::1"} {
		if !slices.ContainsFunc(leaf.IPAddresses, net.ParseIP(h).Equal) {
			t.Errorf("IPAddresses = %v, missing %s", leaf.IPAddresses, h)
		}
	}
	if !slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}) {
		t.Errorf("ExtKeyUsage = %v", leaf.ExtKeyUsage)
	}
	if want := clock.Now().Add(-Backdate); !leaf.NotBefore.Equal(want.Truncate(time.Second)) {
		t.Errorf("NotBefore = %v, want %v", leaf.NotBefore, want)
	}
	if want := clock.Now().Add(48 * time.Hour).Truncate(time.Second); !leaf.NotAfter.Equal(want) {
		t.Errorf("NotAfter = %v, want %v", leaf.NotAfter, want)
	}
	if len(tc.Certificate) != 2 || string(tc.Certificate[1]) != string(a.CACert().Raw) {
		t.Error("the chain is not leaf then CA")
	}
	peer := []*x509.Certificate{leaf, a.CACert()}
	if err := identity.VerifyController(a.CAPool())(tls.ConnectionState{PeerCertificates: peer}); err != nil {
		t.Errorf("VerifyController: %v", err)
	}
	if err := identity.VerifyPinnedController(a.CAHash())(tls.ConnectionState{PeerCertificates: peer}); err != nil {
		t.Errorf("VerifyPinnedController: %v", err)
	}
}

func TestRenewIfDue(t *testing.T) {
	clock := newFakeClock()
	a, _ := openTest(t, func(c *Config) { c.Clock = clock.Now; c.ServingTTL = 30 * time.Hour })
	get := a.ServerTLSConfig().GetCertificate
	first, _ := get(nil)
	wantAt := first.Leaf.NotBefore.Add(first.Leaf.NotAfter.Sub(first.Leaf.NotBefore) * 2 / 3)
	if !a.RenewAt().Equal(wantAt) {
		t.Errorf("RenewAt = %v, want %v", a.RenewAt(), wantAt)
	}
	steps := []struct {
		advance time.Duration
		renewed bool
	}{
		{0, false},
		{19 * time.Hour, false},
		{time.Hour + time.Minute, true}, // past 2/3 of 30h+1m
		{time.Hour, false},
		{20 * time.Hour, true},
	}
	prev := first
	for i, s := range steps {
		clock.Add(s.advance)
		renewed, err := a.RenewIfDue()
		if err != nil || renewed != s.renewed {
			t.Fatalf("step %d: RenewIfDue = %v, %v; want %v", i, renewed, err, s.renewed)
		}
		cur, _ := get(nil)
		if changed := cur.Leaf.SerialNumber.Cmp(prev.Leaf.SerialNumber) != 0; changed != s.renewed {
			t.Fatalf("step %d: serial changed = %v, want %v", i, changed, s.renewed)
		}
		if s.renewed && !cur.Leaf.NotAfter.After(prev.Leaf.NotAfter) {
			t.Errorf("step %d: the new certificate does not last longer", i)
		}
		prev = cur
	}
}

func TestRunRenewsWhenDue(t *testing.T) {
	clock := newFakeClock()
	a, _ := openTest(t, func(c *Config) { c.Clock = clock.Now; c.ServingTTL = time.Hour })
	first := a.ServingCert()
	clock.Add(time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	if err := poll.True(ctx, 5*time.Second, "the serving certificate renewed", func() bool {
		return a.ServingCert().SerialNumber.Cmp(first.SerialNumber) != 0
	}); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v, want nil when ctx ends", err)
	}
}

// TestHandshake runs real TLS handshakes against ServerTLSConfig.
func TestHandshake(t *testing.T) {
	a, _ := openTest(t, nil)
	other, _ := openTest(t, nil)
	agentCert := func(auth *Authority) []tls.Certificate {
		c, key := signedAgent(t, auth)
		return []tls.Certificate{{Certificate: [][]byte{c.Raw}, PrivateKey: key, Leaf: c}}
	}
	tests := []struct {
		name      string
		verify    func(tls.ConnectionState) error
		certs     []tls.Certificate
		wantAgent bool  // the server sees an authenticated agent
		clientErr error // the client refuses the server
		serverErr bool  // the server refuses the client
	}{
		{"CA file, no client cert", identity.VerifyController(a.CAPool()), nil, false, nil, false},
		{"pinned hash", identity.VerifyPinnedController(a.CAHash()), nil, false, nil, false},
		{"agent cert", identity.VerifyController(a.CAPool()), agentCert(a), true, nil, false},
		{"another CA file", identity.VerifyController(other.CAPool()), nil, false, identity.ErrUnknownAuthority, false},
		{"another CA's hash", identity.VerifyPinnedController(other.CAHash()), nil, false, identity.ErrCAHashMismatch, false},
		{"agent cert of another CA", identity.VerifyController(a.CAPool()), agentCert(other), false, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := tls.Listen("tcp", "127.0.0.1:0", a.ServerTLSConfig())
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			type result struct {
				state tls.ConnectionState
				err   error
			}
			server := make(chan result, 1)
			go func() {
				c, err := ln.Accept()
				if err != nil {
					server <- result{err: err}
					return
				}
				defer c.Close()
				tc := c.(*tls.Conn)
				err = tc.Handshake()
				if err == nil {
					_, err = tc.Write([]byte{1})
				}
				server <- result{tc.ConnectionState(), err}
			}()
			conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{
				MinVersion:         tls.VersionTLS13,
				InsecureSkipVerify: true, // VerifyConnection checks the chain and the controller URI
				VerifyConnection:   tt.verify,
				Certificates:       tt.certs,
				NextProtos:         []string{"h2"},
			})
			if err == nil {
				_, err = conn.Read(make([]byte, 1)) // TLS 1.3: the server's verdict on the client arrives after the handshake
				conn.Close()
			}
			got := <-server
			switch {
			case tt.clientErr != nil:
				if !errors.Is(err, tt.clientErr) {
					t.Fatalf("client err = %v, want %v", err, tt.clientErr)
				}
			case tt.serverErr:
				if got.err == nil || err == nil {
					t.Fatalf("server err = %v, client err = %v; want both to fail", got.err, err)
				}
			default:
				if err != nil || got.err != nil {
					t.Fatalf("client err = %v, server err = %v", err, got.err)
				}
				if got.state.NegotiatedProtocol != "h2" || got.state.Version != tls.VersionTLS13 {
					t.Errorf("protocol %q version %x", got.state.NegotiatedProtocol, got.state.Version)
				}
				if tt.wantAgent != (len(got.state.VerifiedChains) > 0) {
					t.Fatalf("verified chains %d, want agent=%v", len(got.state.VerifiedChains), tt.wantAgent)
				}
				if tt.wantAgent {
					id, err := identity.AgentFromCert(got.state.VerifiedChains[0][0])
					if err != nil || id != testAgent {
						t.Errorf("server sees %v, %v; want %v", id, err, testAgent)
					}
				}
			}
		})
	}
}
