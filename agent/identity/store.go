package identity

import (
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cutover-dev/cutover/pkg/atomicfile"
	ident "github.com/cutover-dev/cutover/pkg/identity"
)

// store writes the certificate and key to agent.pem, after ca.crt if
// caPEM is not nil. agent.pem is written last: its presence means that
// both are there.
func store(dir string, cert *x509.Certificate, key *ecdsa.PrivateKey, caPEM []byte) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return fmt.Errorf("encode the agent's key: %w", err)
	}
	if caPEM != nil {
		if err := atomicfile.Write(filepath.Join(dir, CACertName), caPEM, 0o644); err != nil {
			return fmt.Errorf("write the controller's CA: %w", err)
		}
	}
	data := append(pemBlock("CERTIFICATE", cert.Raw), pemBlock("EC PRIVATE KEY", keyDER)...)
	if err := atomicfile.Write(filepath.Join(dir, CertKeyName), data, 0o600); err != nil {
		return fmt.Errorf("write the agent's certificate and key: %w", err)
	}
	return nil
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// parseCertKey parses agent.pem: a certificate then its EC key.
func parseCertKey(data []byte) (*tls.Certificate, error) {
	var cert *x509.Certificate
	var key *ecdsa.PrivateKey
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		var err error
		switch b.Type {
		case "CERTIFICATE":
			if cert == nil {
				cert, err = x509.ParseCertificate(b.Bytes)
			}
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(b.Bytes)
		}
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", b.Type, err)
		}
	}
	switch {
	case cert == nil:
		return nil, errors.New("no certificate")
	case key == nil:
		return nil, errors.New("no EC private key")
	}
	return certKey(cert, key)
}

// certKey checks that key is cert's and returns them as a TLS certificate.
func certKey(cert *x509.Certificate, key *ecdsa.PrivateKey) (*tls.Certificate, error) {
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, errors.New("the certificate is not for the agent's key")
	}
	return &tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert}, nil
}

// parseCAs returns a pool of the certificates in data and their CA hashes.
func parseCAs(data []byte) (*x509.CertPool, []string, error) {
	pool := x509.NewCertPool()
	var hashes []string
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, nil, fmt.Errorf("parse CA certificate: %w", err)
		}
		pool.AddCert(c)
		hashes = append(hashes, ident.CAHash(c))
	}
	if len(hashes) == 0 {
		return nil, nil, errors.New("no PEM CERTIFICATE block")
	}
	return pool, hashes, nil
}
