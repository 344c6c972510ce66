package pki

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/pkg/errkind"
	"github.com/cutover-dev/cutover/pkg/identity"
)

// signedAgent returns a certificate for testAgent signed by a, and its key.
func signedAgent(t testing.TB, a *Authority) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	c, err := a.SignAgent(newCSR(t, key), testAgent, "e1", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return c, key
}

func TestSignAgent(t *testing.T) {
	clock := newFakeClock()
	a, _ := openTest(t, func(c *Config) { c.Clock = clock.Now })
	c, key := signedAgent(t, a)
	if id, err := identity.AgentFromCert(c); err != nil || id != testAgent {
		t.Errorf("AgentFromCert = %v, %v; want %v", id, err, testAgent)
	}
	if len(c.URIs) != 1 || len(c.DNSNames) != 0 || c.Subject.CommonName != "production/fe-1" {
		t.Errorf("names: URIs %v DNS %v CN %q; want only the agent URI and CN", c.URIs, c.DNSNames, c.Subject.CommonName)
	}
	if c.IsCA || c.KeyUsage != x509.KeyUsageDigitalSignature || len(c.ExtKeyUsage) != 1 || c.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth {
		t.Errorf("usage: IsCA %v KeyUsage %v ExtKeyUsage %v", c.IsCA, c.KeyUsage, c.ExtKeyUsage)
	}
	if !key.PublicKey.Equal(c.PublicKey) {
		t.Error("the certificate does not hold the CSR's key")
	}
	if c.SerialNumber.BitLen() < 64 {
		t.Errorf("serial %v is not random-looking", c.SerialNumber)
	}
	if want := clock.Now().Add(24 * time.Hour).Truncate(time.Second); !c.NotAfter.Equal(want) {
		t.Errorf("NotAfter = %v, want %v", c.NotAfter, want)
	}
	if _, err := c.Verify(x509.VerifyOptions{Roots: a.CAPool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("the certificate does not chain to the CA: %v", err)
	}
	c2, _ := signedAgent(t, a)
	if c2.SerialNumber.Cmp(c.SerialNumber) == 0 {
		t.Error("two certificates with one serial")
	}
	long, err := a.SignAgent(newCSR(t, nil), testAgent, "e1", 100*365*24*time.Hour)
	if err != nil || !long.NotAfter.Equal(a.CACert().NotAfter) {
		t.Errorf("a lifetime past the CA's: NotAfter %v, %v; want the CA's %v", long.NotAfter, err, a.CACert().NotAfter)
	}
}

func TestSignAgentRefuses(t *testing.T) {
	a, _ := openTest(t, nil)
	good := newCSR(t, nil)
	badSig := append([]byte(nil), good...)
	badSig[len(badSig)-1] ^= 0xff
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	smallCSR, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, small)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	edCSR, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, edKey)
	tests := []struct {
		name string
		csr  []byte
		id   identity.Agent
		ttl  time.Duration
		ok   bool
	}{
		{"good", good, testAgent, time.Hour, true},
		{"ed25519", edCSR, testAgent, time.Hour, true},
		{"empty", nil, testAgent, time.Hour, false},
		{"garbage", []byte("garbage"), testAgent, time.Hour, false},
		{"trailing data", append(append([]byte(nil), good...), 0), testAgent, time.Hour, false},
		{"bad signature", badSig, testAgent, time.Hour, false},
		{"small RSA", smallCSR, testAgent, time.Hour, false},
		{"bad environment", good, identity.Agent{Environment: "Prod", Name: "fe-1"}, time.Hour, false},
		{"no name", good, identity.Agent{Environment: "prod"}, time.Hour, false},
		{"zero ttl", good, testAgent, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := a.SignAgent(tt.csr, tt.id, "e1", tt.ttl)
			if tt.ok {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, errkind.InvalidArgument) {
				t.Fatalf("err = %v, want InvalidArgument", err)
			}
		})
	}
}

func FuzzSignAgentCSR(f *testing.F) {
	a, _ := openTest(f, nil)
	f.Add(newCSR(f, nil))
	f.Fuzz(func(t *testing.T, csr []byte) {
		c, err := a.SignAgent(csr, testAgent, "e1", time.Hour)
		if err != nil {
			if !errors.Is(err, errkind.InvalidArgument) {
				t.Fatalf("err = %v, want InvalidArgument", err)
			}
			return
		}
		if id, err := identity.AgentFromCert(c); err != nil || id != testAgent {
			t.Fatalf("signed %v, %v; want %v", id, err, testAgent)
		}
	})
}
