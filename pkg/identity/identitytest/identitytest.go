// Package identitytest makes certificates for tests: a CA and the
// certificates it signs, with the URI SANs of pkg/identity
// (cutover://controller, cutover://<environment>/agent/<name>) given as
// strings. Only tests import it. It does not import pkg/identity, so that
// pkg/identity's own tests can use it.
package identitytest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/url"
	"testing"
	"time"
)

// Cert is a certificate and its key, made for a test.
type Cert struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
}

// Options says what a certificate holds. A zero NotBefore is an hour ago,
// a zero NotAfter an hour from now.
type Options struct {
	CN                  string
	CA                  bool
	URIs                []string
	EKU                 []x509.ExtKeyUsage
	NotBefore, NotAfter time.Time
}

// New makes a certificate for a new P-256 key, signed by parent, or
// self-signed if parent is nil.
func New(t testing.TB, parent *Cert, o Options) *Cert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: o.CN},
		NotBefore:             o.NotBefore,
		NotAfter:              o.NotAfter,
		IsCA:                  o.CA,
		BasicConstraintsValid: true,
		ExtKeyUsage:           o.EKU,
		KeyUsage:              x509.KeyUsageDigitalSignature,
	}
	if tmpl.NotBefore.IsZero() {
		tmpl.NotBefore = time.Now().Add(-time.Hour)
	}
	if tmpl.NotAfter.IsZero() {
		tmpl.NotAfter = time.Now().Add(time.Hour)
	}
	if o.CA {
		tmpl.KeyUsage |= x509.KeyUsageCertSign
	}
	for _, s := range o.URIs {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = append(tmpl.URIs, u)
	}
	signer, signerKey := tmpl, key
	if parent != nil {
		signer, signerKey = parent.Cert, parent.Key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &Cert{Cert: cert, Key: key}
}

// NewCA makes a self-signed CA.
func NewCA(t testing.TB, cn string) *Cert {
	t.Helper()
	return New(t, nil, Options{CN: cn, CA: true})
}

// PEM returns the certificate, PEM.
func (c *Cert) PEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Cert.Raw})
}

// KeyPEM returns the key, SEC 1 ("EC PRIVATE KEY") PEM.
func (c *Cert) KeyPEM(t testing.TB) []byte {
	t.Helper()
	der, err := x509.MarshalECPrivateKey(c.Key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
}

// TLS returns c as a TLS certificate whose chain is c, then chain.
func (c *Cert) TLS(chain ...*Cert) tls.Certificate {
	tc := tls.Certificate{Certificate: [][]byte{c.Cert.Raw}, PrivateKey: c.Key, Leaf: c.Cert}
	for _, p := range chain {
		tc.Certificate = append(tc.Certificate, p.Cert.Raw)
	}
	return tc
}
