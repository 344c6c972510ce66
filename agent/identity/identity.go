// Package identity is the agent's identity: its private key, its
// certificate (URI SAN cutover://<environment>/agent/<name>, see
// pkg/identity), the controller's CA, enrollment with a join token, and
// renewal before expiry.
//
// Files in Config.Dir (<agent data-dir>/tls, created 0700):
//
//	agent.pem  the certificate, then its EC private key (SEC 1), PEM, 0600;
//	           one file replaced atomically, so key and certificate always
//	           match; its presence means the agent is enrolled
//	ca.crt     the controller's CA certificate, PEM, as the controller sent
//	           it at enrollment
//
// The key never leaves the host: the agent sends a certificate signing
// request, the controller signs it.
package identity

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	ident "github.com/cutover-dev/cutover/pkg/identity"
)

// File names in Config.Dir.
const (
	CertKeyName = "agent.pem"
	CACertName  = "ca.crt"
)

var (
	// ErrNotEnrolled is returned by Load when the agent has no
	// certificate yet: it must enroll with a join token.
	ErrNotEnrolled = errors.New("the agent is not enrolled")
	// ErrExpired is wrapped by Load's error when the stored certificate
	// has expired: the agent must enroll again with a new join token.
	ErrExpired = errors.New("the agent's certificate has expired")
)

// Config says where the agent's identity lives and what it must be.
type Config struct {
	// Dir is <agent data-dir>/tls.
	Dir string
	// Environment and Name are the agent's identity (--environment,
	// --name); they must match the stored certificate's.
	Environment, Name string
	// JoinTokenFile holds a join token (--join-token-file); needed to
	// enroll.
	JoinTokenFile string
	// CAFile is an optional CA certificate PEM (--ca-file) to trust at
	// enrollment instead of the join token's CA hash; the hash must
	// still match it.
	CAFile string
	// Clock returns the current time; default time.Now.
	Clock func() time.Time
	// Log receives enrollments and renewals; default slog.Default().
	Log *slog.Logger
}

func (cfg *Config) setDefaults() {
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
}

func (cfg *Config) agent() ident.Agent {
	return ident.Agent{Environment: cfg.Environment, Name: cfg.Name}
}

// Identity is an enrolled agent's key, certificate and CA. Its methods
// are safe for concurrent use.
type Identity struct {
	cfg   Config
	agent ident.Agent

	renewMu sync.Mutex // serializes renewals
	cert    atomic.Pointer[tls.Certificate]
	roots   atomic.Pointer[x509.CertPool]
}

// Load returns the identity stored in cfg.Dir. It returns ErrNotEnrolled
// (wrapped) when there is no agent.pem, an error wrapping ErrExpired when
// the certificate has expired, and an error saying what to do when the
// stored identity is not cfg.Environment/cfg.Name.
func Load(cfg Config) (*Identity, error) {
	cfg.setDefaults()
	certPath := filepath.Join(cfg.Dir, CertKeyName)
	data, err := os.ReadFile(certPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: no %s", ErrNotEnrolled, certPath)
	}
	if err != nil {
		return nil, fmt.Errorf("read the agent's certificate: %w", err)
	}
	tc, err := parseCertKey(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w (move it away and enroll again with a new join token)", certPath, err)
	}
	caPath := filepath.Join(cfg.Dir, CACertName)
	caPEM, err := os.ReadFile(caPath)
	if err != nil {
		return nil, fmt.Errorf("read the controller's CA: %w (it is written at enrollment with %s)", err, CertKeyName)
	}
	roots, _, err := parseCAs(caPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", caPath, err)
	}
	got, err := ident.AgentFromCert(tc.Leaf)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", certPath, err)
	}
	if want := cfg.agent(); got != want {
		return nil, fmt.Errorf("this agent is enrolled as %s (data dir %s), not %s; to change it, revoke it and enroll again with a new join token",
			got, cfg.Dir, want)
	}
	if _, err := tc.Leaf.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: tc.Leaf.NotBefore.Add(time.Second),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return nil, fmt.Errorf("%s was not issued by the CA in %s: %w", certPath, caPath, err)
	}
	if now := cfg.Clock(); !now.Before(tc.Leaf.NotAfter) {
		return nil, fmt.Errorf("%w: %s's expired at %s (the agent was stopped or cut off longer than its lifetime): create a join token with `cutoverctl agent token create --environment %s` and give it with --join-token-file to enroll again",
			ErrExpired, got, tc.Leaf.NotAfter.UTC().Format(time.RFC3339), got.Environment)
	}
	return newIdentity(cfg, got, tc, roots), nil
}

func newIdentity(cfg Config, a ident.Agent, tc *tls.Certificate, roots *x509.CertPool) *Identity {
	i := &Identity{cfg: cfg, agent: a}
	i.cert.Store(tc)
	i.roots.Store(roots)
	return i
}

// Agent returns the agent's identity.
func (i *Identity) Agent() ident.Agent { return i.agent }

// Certificate returns the agent's current certificate.
func (i *Identity) Certificate() *x509.Certificate { return i.cert.Load().Leaf }

// TLSCertificate returns the current certificate with its key, as TLS
// presents it (a renewal replaces it for new connections).
func (i *Identity) TLSCertificate() *tls.Certificate { return i.cert.Load() }

// Roots returns the controller's CA, which issues every agent's
// certificate.
func (i *Identity) Roots() *x509.CertPool { return i.roots.Load() }

// NotAfter returns when the current certificate expires.
func (i *Identity) NotAfter() time.Time { return i.Certificate().NotAfter }

// ClientTLSConfig returns the TLS configuration to dial the controller
// with: TLS 1.3, the current certificate (a renewal applies to new
// connections; open ones keep theirs), and the controller checked with
// pkg/identity.VerifyController against the stored CA instead of the
// standard host name check (hence InsecureSkipVerify).
func (i *Identity) ClientTLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return i.cert.Load(), nil
		},
		RootCAs:            i.roots.Load(),
		InsecureSkipVerify: true, // VerifyConnection verifies the chain and the controller URI
		VerifyConnection: func(cs tls.ConnectionState) error {
			return ident.VerifyController(i.roots.Load())(cs)
		},
	}
}
