// Package pki is the controller's certificate authority. It keeps the CA
// (created on first start in <data-dir>/tls, or given by the operator),
// issues the controller's serving certificate in memory and renews it
// before it expires without a restart, and signs agents' certificate
// signing requests with their identity as a URI SAN (see pkg/identity).
//
// Files in Config.Dir (created 0700):
//
//	ca.crt  the CA certificate, PEM (0644): what clients give as --ca-file
//	ca.key  the CA private key, PKCS #8 PEM (0600); absent when the
//	        operator gives the CA (--tls-ca-cert/--tls-ca-key)
//
// The serving certificate is never written: a new one is issued at each
// start. It carries cutover://controller, which is what agents and
// cutoverctl check (pkg/identity.VerifyController), and its TLS chain
// holds the CA after the leaf, so that an agent that enrolls with only a
// join token can find the CA whose hash the token pins.
//
// It does not import grpc: the controller wraps ServerTLSConfig in gRPC
// credentials.
package pki

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cutover-dev/cutover/pkg/identity"
)

// DefaultServingTTL is the lifetime of a serving certificate when
// Config.ServingTTL is zero.
const DefaultServingTTL = 30 * 24 * time.Hour

// Backdate is how far before its issue a certificate's NotBefore is set,
// for clocks that are a little behind.
const Backdate = time.Minute

// Config says where the CA lives and what the serving certificate holds.
type Config struct {
	// Dir is <data-dir>/tls; created 0700 if missing.
	Dir string
	// CACertFile and CAKeyFile name an operator-provided CA
	// (--tls-ca-cert/--tls-ca-key), PEM; both or neither. The key may be
	// ECDSA, RSA or Ed25519, in PKCS #8, SEC 1 or PKCS #1. The
	// certificate is copied to Dir/ca.crt; the key stays where it is.
	CACertFile, CAKeyFile string
	// Hosts are the DNS names and IP addresses of the serving
	// certificate, for clients that check host names (grpcurl);
	// "localhost", "127.0.0.1" and "::1" are always added.
	Hosts []string
	// ServingTTL is the serving certificate's lifetime; default
	// DefaultServingTTL. It is renewed after 2/3 of it.
	ServingTTL time.Duration
	// Clock returns the current time; default time.Now.
	Clock func() time.Time
	// Shared, if set, is where the controllers sharing their records keep
	// one CA (shared.go); an operator's CA (CACertFile) is used instead
	// when given.
	Shared Shared
	// Log receives renewals and warnings; default slog.Default().
	Log *slog.Logger
}

// Authority is the controller's CA and serving certificate. Its methods
// are safe for concurrent use.
type Authority struct {
	cfg    Config
	caCert *x509.Certificate
	caKey  crypto.Signer
	pool   *x509.CertPool
	hash   string

	renewMu sync.Mutex // serializes renewals
	serving atomic.Pointer[tls.Certificate]
}

// Open loads or creates the CA (see Config) and issues a serving
// certificate. Errors say which file is wrong and what to do.
func Open(cfg Config) (*Authority, error) {
	if cfg.Dir == "" {
		return nil, errors.New("pki: no directory for the CA (Config.Dir)")
	}
	if cfg.ServingTTL == 0 {
		cfg.ServingTTL = DefaultServingTTL
	}
	if cfg.ServingTTL < 0 {
		return nil, fmt.Errorf("pki: serving certificate lifetime %s is negative", cfg.ServingTTL)
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	a := &Authority{cfg: cfg}
	if cfg.Shared != nil && cfg.CACertFile == "" {
		if err := loadShared(cfg); err != nil {
			return nil, err
		}
	}
	var err error
	if a.caCert, a.caKey, err = loadCA(cfg); err != nil {
		return nil, err
	}
	a.pool = x509.NewCertPool()
	a.pool.AddCert(a.caCert)
	a.hash = identity.CAHash(a.caCert)
	if left := a.caCert.NotAfter.Sub(cfg.Clock()); left < 90*24*time.Hour {
		cfg.Log.Warn("the controller's CA certificate expires soon; agents and clients will fail to connect after it does",
			"not_after", a.caCert.NotAfter, "file", cfg.Dir)
	}
	if err := a.renew(); err != nil {
		return nil, err
	}
	return a, nil
}

// CACert returns the CA certificate.
func (a *Authority) CACert() *x509.Certificate { return a.caCert }

// CAPool returns a pool that holds only the CA certificate. Callers must
// not add to it.
func (a *Authority) CAPool() *x509.CertPool { return a.pool }

// CAHash returns identity.CAHash of the CA: what join tokens carry.
func (a *Authority) CAHash() string { return a.hash }

// ServingCert returns the current serving certificate's leaf.
func (a *Authority) ServingCert() *x509.Certificate { return a.serving.Load().Leaf }

// ServerTLSConfig returns the controller's server TLS configuration: TLS
// 1.3 only, the current serving certificate (renewals apply to new
// connections at once), and client certificates verified against the CA
// when a client presents one (agents do; enrolling agents and operators
// with bearer tokens do not). Whether a method needs a client
// certificate is for the caller to decide, from the verified chains in
// the connection state.
func (a *Authority) ServerTLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return a.serving.Load(), nil
		},
		ClientAuth: tls.VerifyClientCertIfGiven,
		ClientCAs:  a.pool,
		NextProtos: []string{"h2"},
	}
}

// notAfter returns now+ttl, but no later than the CA's own expiry.
func (a *Authority) notAfter(now time.Time, ttl time.Duration) time.Time {
	t := now.Add(ttl)
	if t.After(a.caCert.NotAfter) {
		return a.caCert.NotAfter
	}
	return t
}

// CACertDER returns the CA certificate, DER.
func (a *Authority) CACertDER() []byte { return a.caCert.Raw }

// PeerTLSConfig is the client configuration of this controller towards
// another controller of its CA (controlplane/mirror): the serving
// certificate as the client certificate (it names cutover://controller),
// and the check that the peer is a controller of the CA. Calls made with
// it authenticate as a controller, not as an operator: never forward an
// operator's call over it.
func (a *Authority) PeerTLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		InsecureSkipVerify: true, // VerifyConnection: the CA and cutover://controller, not a host name
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return a.serving.Load(), nil
		},
		VerifyConnection: identity.VerifyController(a.pool),
	}
}
