package agent

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"

	ident "github.com/cutover-dev/cutover/pkg/identity"
	"github.com/cutover-dev/cutover/pkg/identity/identitytest"
)

// enrolled writes an agent identity for prod/fe-1 into dataDir (as
// enrollment would) under a CA made for the test, and returns the TLS
// configuration of a controller that agent trusts. The real enrollment is
// tested in agent/identity and e2e.
func enrolled(t *testing.T, dataDir string) *tls.Config {
	t.Helper()
	ca := identitytest.NewCA(t, "test CA")
	agent := identitytest.New(t, ca, identitytest.Options{URIs: []string{"cutover://prod/agent/fe-1"},
		EKU: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	server := identitytest.New(t, ca, identitytest.Options{URIs: []string{ident.ControllerURI},
		EKU: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	dir := filepath.Join(dataDir, "tls")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "agent.pem"), append(agent.PEM(), agent.KeyPEM(t)...), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ca.crt"), ca.PEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	return &tls.Config{MinVersion: tls.VersionTLS13, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool,
		Certificates: []tls.Certificate{server.TLS(ca)}}
}
