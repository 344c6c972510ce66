package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"github.com/cutover-dev/cutover/pkg/atomicfile"
)

// File names in Config.Dir.
const (
	CACertName = "ca.crt"
	CAKeyName  = "ca.key"
)

// caLifetime is the lifetime of a CA that Open creates.
const caLifetime = 10 * 365 * 24 * time.Hour

// loadCA returns the operator's CA, the one in cfg.Dir, or a new one.
func loadCA(cfg Config) (*x509.Certificate, crypto.Signer, error) {
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("pki: create %s: %w", cfg.Dir, err)
	}
	certPath := filepath.Join(cfg.Dir, CACertName)
	keyPath := filepath.Join(cfg.Dir, CAKeyName)
	switch {
	case cfg.CACertFile != "" || cfg.CAKeyFile != "":
		if cfg.CACertFile == "" || cfg.CAKeyFile == "" {
			return nil, nil, errors.New("pki: an operator-provided CA needs both the certificate and the key (--tls-ca-cert and --tls-ca-key)")
		}
		cert, key, err := readCA(cfg.CACertFile, cfg.CAKeyFile, cfg.Clock())
		if err != nil {
			return nil, nil, err
		}
		if err := atomicfile.Write(certPath, encodePEM("CERTIFICATE", cert.Raw), 0o644); err != nil {
			return nil, nil, fmt.Errorf("pki: copy the CA certificate: %w", err)
		}
		cfg.Log.Info("using the operator's CA", "cert", cfg.CACertFile, "key", cfg.CAKeyFile, "subject", cert.Subject.String(), "not_after", cert.NotAfter)
		return cert, key, nil
	case exists(certPath):
		if !exists(keyPath) {
			return nil, nil, fmt.Errorf("pki: %s exists but %s does not: restore the key from a backup, or move %s away to create a new CA (every agent must then enroll again)", certPath, keyPath, certPath)
		}
		if fi, err := os.Stat(keyPath); err == nil && fi.Mode().Perm()&0o077 != 0 {
			cfg.Log.Warn("the CA key is readable by others than its owner; chmod 0600 it", "file", keyPath, "mode", fi.Mode().Perm().String())
		}
		return readCA(certPath, keyPath, cfg.Clock())
	default:
		cert, key, err := createCA(cfg.Clock())
		if err != nil {
			return nil, nil, err
		}
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, nil, fmt.Errorf("pki: encode the CA key: %w", err)
		}
		// The key first: ca.crt present means both are.
		if err := atomicfile.Write(keyPath, encodePEM("PRIVATE KEY", keyDER), 0o600); err != nil {
			return nil, nil, fmt.Errorf("pki: write the CA key: %w", err)
		}
		if err := atomicfile.Write(certPath, encodePEM("CERTIFICATE", cert.Raw), 0o644); err != nil {
			return nil, nil, fmt.Errorf("pki: write the CA certificate: %w", err)
		}
		cfg.Log.Info("created a new CA", "cert", certPath, "not_after", cert.NotAfter)
		return cert, key, nil
	}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return !errors.Is(err, fs.ErrNotExist)
}

// createCA returns a new self-signed ECDSA P-256 CA.
func createCA(now time.Time) (*x509.Certificate, crypto.Signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: generate the CA key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          newSerial(),
		Subject:               pkix.Name{CommonName: "cutover CA"},
		NotBefore:             now.Add(-Backdate),
		NotAfter:              now.Add(caLifetime),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: create the CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: parse the new CA certificate: %w", err)
	}
	return cert, key, nil
}

// readCA reads a CA certificate and its key and checks that they go
// together and can sign at now.
func readCA(certPath, keyPath string, now time.Time) (*x509.Certificate, crypto.Signer, error) {
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: read the CA certificate: %w", err)
	}
	cert, err := parseCertPEM(certPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: %s: %w", certPath, err)
	}
	if !cert.IsCA || !cert.BasicConstraintsValid {
		return nil, nil, fmt.Errorf("pki: %s (%s) is not a CA certificate (basic constraints CA:TRUE): give a CA's certificate", certPath, cert.Subject)
	}
	if now.After(cert.NotAfter) {
		return nil, nil, fmt.Errorf("pki: the CA certificate %s expired at %s: give a renewed one", certPath, cert.NotAfter.UTC().Format(time.RFC3339))
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: read the CA key: %w", err)
	}
	key, err := parseKeyPEM(keyPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: %s: %w", keyPath, err)
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return nil, nil, fmt.Errorf("pki: the key %s is not the key of the certificate %s: give the matching pair", keyPath, certPath)
	}
	return cert, key, nil
}

// parseCertPEM returns the first certificate in data.
func parseCertPEM(data []byte) (*x509.Certificate, error) {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil, errors.New("no PEM CERTIFICATE block")
		}
		if b.Type == "CERTIFICATE" {
			return x509.ParseCertificate(b.Bytes)
		}
	}
}

// parseKeyPEM returns the first private key in data: PKCS #8, SEC 1 (EC)
// or PKCS #1 (RSA); ECDSA, RSA or Ed25519.
func parseKeyPEM(data []byte) (crypto.Signer, error) {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil, errors.New("no PEM private key block (PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY)")
		}
		var (
			key any
			err error
		)
		switch b.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(b.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(b.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(b.Bytes)
		case "ENCRYPTED PRIVATE KEY":
			return nil, errors.New("the key is encrypted: give it unencrypted (openssl pkey -in KEY -out KEY.plain), readable only by the controller's user")
		default:
			continue // EC PARAMETERS, certificates, …
		}
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", b.Type, err)
		}
		switch key.(type) {
		case *ecdsa.PrivateKey, *rsa.PrivateKey, ed25519.PrivateKey:
			return key.(crypto.Signer), nil
		default:
			return nil, fmt.Errorf("unsupported key type %T: use ECDSA, RSA or Ed25519", key)
		}
	}
}

func encodePEM(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// newSerial returns a random positive 128-bit serial number.
func newSerial() *big.Int {
	limit := new(big.Int).Lsh(big.NewInt(1), 128)
	for {
		n, err := rand.Int(rand.Reader, limit)
		if err == nil && n.Sign() > 0 {
			return n
		}
	}
}
