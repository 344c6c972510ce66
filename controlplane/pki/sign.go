package pki

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net/url"
	"time"

	"github.com/cutover-dev/cutover/pkg/errkind"
	"github.com/cutover-dev/cutover/pkg/identity"
)

// minRSABits is the smallest RSA key SignAgent accepts.
const minRSABits = 2048

// SignAgent issues a client certificate for agent id with the public key
// of csrDER, a DER PKCS #10 certificate signing request, valid from now
// (less Backdate) for ttl, and never past the CA's own expiry. The CSR
// must be signed by its key (proof of possession); the names it asks for
// are ignored: the certificate holds only id's URI SAN
// (identity.Agent.URI), with common name "<environment>/<name>" and the
// enrollment it belongs to as the subject's serial number, for client
// authentication only. It is backdated by Backdate, or a tenth of ttl if
// that is less, so that a short-lived certificate is renewed (at two
// thirds of its validity) before it expires.
//
// Errors: errkind.InvalidArgument for a malformed or badly signed CSR, a
// weak or unsupported key, an invalid id or a ttl that is not positive.
func (a *Authority) SignAgent(csrDER []byte, id identity.Agent, enrollment string, ttl time.Duration) (*x509.Certificate, error) {
	if err := id.Validate(); err != nil {
		return nil, fmt.Errorf("agent identity: %w", err)
	}
	if ttl <= 0 {
		return nil, fmt.Errorf("certificate lifetime %s is not positive: %w", ttl, errkind.InvalidArgument)
	}
	csr, err := parseCSR(csrDER)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(id.URI())
	if err != nil {
		return nil, fmt.Errorf("agent URI %q: %v: %w", id.URI(), err, errkind.InvalidArgument)
	}
	now := a.cfg.Clock()
	tmpl := &x509.Certificate{
		SerialNumber:          newSerial(),
		Subject:               pkix.Name{CommonName: id.String(), SerialNumber: enrollment},
		NotBefore:             now.Add(-min(Backdate, ttl/10)),
		NotAfter:              a.notAfter(now, ttl),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		URIs:                  []*url.URL{u},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.caCert, csr.PublicKey, a.caKey)
	if err != nil {
		return nil, fmt.Errorf("sign the certificate of agent %s: %w", id, err)
	}
	return x509.ParseCertificate(der)
}

// parseCSR parses and checks a CSR; errors wrap errkind.InvalidArgument.
func parseCSR(der []byte) (*x509.CertificateRequest, error) {
	if len(der) == 0 {
		return nil, fmt.Errorf("no certificate signing request: %w", errkind.InvalidArgument)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, fmt.Errorf("the certificate signing request is not a DER PKCS #10 request: %v: %w", err, errkind.InvalidArgument)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("the certificate signing request's signature does not verify with its own key: %v: %w", err, errkind.InvalidArgument)
	}
	switch k := csr.PublicKey.(type) {
	case *ecdsa.PublicKey, ed25519.PublicKey:
	case *rsa.PublicKey:
		if k.N.BitLen() < minRSABits {
			return nil, fmt.Errorf("the certificate signing request's RSA key has %d bits, fewer than %d: use ECDSA P-256: %w", k.N.BitLen(), minRSABits, errkind.InvalidArgument)
		}
	default:
		return nil, fmt.Errorf("the certificate signing request's key is a %T: use ECDSA P-256: %w", csr.PublicKey, errkind.InvalidArgument)
	}
	return csr, nil
}
