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
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/pkg/identity"
)

func TestOpenCreatesThenReuses(t *testing.T) {
	a, cfg := openTest(t, nil)
	if a.CACert().Subject.CommonName != "cutover CA" || !a.CACert().IsCA || a.CACert().KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Errorf("CA = %v IsCA=%v KeyUsage=%v", a.CACert().Subject, a.CACert().IsCA, a.CACert().KeyUsage)
	}
	if _, ok := a.CACert().PublicKey.(*ecdsa.PublicKey); !ok {
		t.Errorf("CA key is %T, want ECDSA", a.CACert().PublicKey)
	}
	if life := a.CACert().NotAfter.Sub(a.CACert().NotBefore); life < 9*365*24*time.Hour {
		t.Errorf("CA lifetime %s, want about 10 years", life)
	}
	if a.CAHash() != identity.CAHash(a.CACert()) {
		t.Error("CAHash")
	}
	for _, f := range []struct {
		name string
		mode os.FileMode
	}{{"", 0o700 | os.ModeDir}, {CAKeyName, 0o600}, {CACertName, 0o644}} {
		fi, err := os.Stat(filepath.Join(cfg.Dir, f.name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != f.mode {
			t.Errorf("%s: mode %v, want %v", filepath.Join(cfg.Dir, f.name), fi.Mode(), f.mode)
		}
	}
	if leftovers, _ := filepath.Glob(filepath.Join(cfg.Dir, ".*")); len(leftovers) != 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}

	b, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if b.CAHash() != a.CAHash() || !b.CACert().Equal(a.CACert()) {
		t.Error("a second Open made a new CA")
	}
	if b.ServingCert().SerialNumber.Cmp(a.ServingCert().SerialNumber) == 0 {
		t.Error("a second Open reused the serving certificate")
	}
}

func TestOpenRefusesBrokenDir(t *testing.T) {
	tests := []struct {
		name    string
		damage  func(t *testing.T, dir string)
		wantErr string
	}{
		{"key missing", func(t *testing.T, dir string) {
			rm(t, filepath.Join(dir, CAKeyName))
		}, "ca.key does not"},
		{"key of another CA", func(t *testing.T, dir string) {
			_, other := openTest(t, nil)
			cp(t, filepath.Join(other.Dir, CAKeyName), filepath.Join(dir, CAKeyName))
		}, "is not the key of the certificate"},
		{"garbage key", func(t *testing.T, dir string) {
			write(t, filepath.Join(dir, CAKeyName), []byte("not a key"))
		}, "no PEM private key"},
		{"garbage cert", func(t *testing.T, dir string) {
			write(t, filepath.Join(dir, CACertName), []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
		}, "ca.crt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, cfg := openTest(t, nil)
			tt.damage(t, cfg.Dir)
			_, err := Open(cfg)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Open = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestOpenOperatorCA(t *testing.T) {
	ecKey, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	pkcs8 := func(k crypto.Signer) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return encodePEM("PRIVATE KEY", der)
	}
	sec1, _ := x509.MarshalECPrivateKey(ecKey)
	ecParams := "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n"
	tests := []struct {
		name    string
		key     crypto.Signer // the certificate's key
		keyPEM  []byte        // what the key file holds
		ca      bool
		wantErr string
	}{
		{"EC PKCS8", ecKey, pkcs8(ecKey), true, ""},
		{"EC SEC1 after EC PARAMETERS", ecKey, append([]byte(ecParams), encodePEM("EC PRIVATE KEY", sec1)...), true, ""},
		{"RSA PKCS1", rsaKey, encodePEM("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey)), true, ""},
		{"RSA PKCS8", rsaKey, pkcs8(rsaKey), true, ""},
		{"Ed25519 PKCS8", edKey, pkcs8(edKey), true, ""},
		{"wrong key", ecKey, pkcs8(rsaKey), true, "is not the key of the certificate"},
		{"not a CA", ecKey, pkcs8(ecKey), false, "is not a CA certificate"},
		{"encrypted", ecKey, encodePEM("ENCRYPTED PRIVATE KEY", []byte{1}), true, "encrypted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			cert := selfSigned(t, tt.key, tt.ca)
			certFile, keyFile := filepath.Join(dir, "op.crt"), filepath.Join(dir, "op.key")
			write(t, certFile, encodePEM("CERTIFICATE", cert.Raw))
			write(t, keyFile, tt.keyPEM)
			cfg := Config{Dir: filepath.Join(dir, "tls"), CACertFile: certFile, CAKeyFile: keyFile, Log: quietLog()}
			a, err := Open(cfg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Open = %v, want an error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !a.CACert().Equal(cert) || a.CAHash() != identity.CAHash(cert) {
				t.Error("the Authority does not use the operator's CA")
			}
			got, err := os.ReadFile(filepath.Join(cfg.Dir, CACertName))
			if err != nil || string(got) != string(encodePEM("CERTIFICATE", cert.Raw)) {
				t.Errorf("ca.crt is not a copy of the operator's CA: %v", err)
			}
			if _, err := os.Stat(filepath.Join(cfg.Dir, CAKeyName)); err == nil {
				t.Error("the operator's key was copied to ca.key")
			}
			if _, err := a.SignAgent(newCSR(t, nil), testAgent, "e1", time.Hour); err != nil {
				t.Errorf("SignAgent: %v", err)
			}
		})
	}
}

func TestOpenRefusesHalfAnOperatorCA(t *testing.T) {
	for _, cfg := range []Config{{CACertFile: "x"}, {CAKeyFile: "x"}} {
		cfg.Dir, cfg.Log = t.TempDir(), quietLog()
		if _, err := Open(cfg); err == nil || !strings.Contains(err.Error(), "both") {
			t.Errorf("Open(%+v) = %v, want an error asking for both", cfg, err)
		}
	}
}

func selfSigned(t *testing.T, key crypto.Signer, ca bool) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber:          newSerial(),
		Subject:               pkix.Name{CommonName: "operator CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(365 * 24 * time.Hour),
		IsCA:                  ca,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func write(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func cp(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	write(t, to, b)
}

func rm(t *testing.T, path string) {
	t.Helper()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
}
