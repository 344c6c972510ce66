package identity

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net/url"
	"testing"
	"time"
)

// testCert is a certificate and its key, made for tests.
type testCert struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// certOpts says what a test certificate holds.
type certOpts struct {
	cn        string
	ca        bool
	uris      []string
	eku       []x509.ExtKeyUsage
	notBefore time.Time
	notAfter  time.Time
}

// newCert makes a certificate signed by parent (self-signed if nil).
func newCert(t testing.TB, parent *testCert, o certOpts) *testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if o.notBefore.IsZero() {
		o.notBefore = time.Now().Add(-time.Hour)
	}
	if o.notAfter.IsZero() {
		o.notAfter = time.Now().Add(time.Hour)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: o.cn},
		NotBefore:             o.notBefore,
		NotAfter:              o.notAfter,
		IsCA:                  o.ca,
		BasicConstraintsValid: true,
		ExtKeyUsage:           o.eku,
		KeyUsage:              x509.KeyUsageDigitalSignature,
	}
	if o.ca {
		tmpl.KeyUsage |= x509.KeyUsageCertSign
	}
	for _, s := range o.uris {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = append(tmpl.URIs, u)
	}
	signer, signerKey := tmpl, key
	if parent != nil {
		signer, signerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCert{cert: cert, key: key}
}

func newCA(t testing.TB, cn string) *testCert {
	return newCert(t, nil, certOpts{cn: cn, ca: true})
}
