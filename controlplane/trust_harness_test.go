package controlplane

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/cutover-dev/cutover/pkg/identity"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// controllers maps a test controller's address to it, so that fake agents
// given only an address can enroll with it.
var controllers sync.Map

// caPool reads the controller's CA certificate.
func caPool(t testing.TB, dataDir string) *x509.CertPool {
	t.Helper()
	pem, err := os.ReadFile(filepath.Join(dataDir, "tls", "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("no CA certificate in ca.crt")
	}
	return pool
}

// bearer is a per-RPC credential that sends a token.
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}
func (bearer) RequireTransportSecurity() bool { return true }

// dialAs connects to the controller over TLS with token (none if empty).
func dialAs(t testing.TB, addr, dataDir, token string) *grpc.ClientConn {
	t.Helper()
	opts := []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
		RootCAs: caPool(t, dataDir), ServerName: "127.0.0.1", MinVersion: tls.VersionTLS13}))}
	if token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearer(token)))
	}
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return conn
}

// bootstrapToken reads the first admin token.
func bootstrapToken(t testing.TB, dataDir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir, BootstrapTokenFile))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// as returns an AdminService client that acts as subject with role
// (viewer, deployer, approver, admin) in every environment.
func (tc *testController) as(t testing.TB, subject string, role cutoverv1.Role) cutoverv1.AdminServiceClient {
	t.Helper()
	boot := dialAs(t, tc.addr, tc.dataDir, bootstrapToken(t, tc.dataDir))
	defer boot.Close()
	res, err := cutoverv1.NewAdminServiceClient(boot).CreateToken(context.Background(),
		&cutoverv1.CreateTokenRequest{Subject: subject, Role: role})
	if err != nil {
		t.Fatal(err)
	}
	conn := dialAs(t, tc.addr, tc.dataDir, res.GetToken())
	t.Cleanup(func() { conn.Close() })
	return cutoverv1.NewAdminServiceClient(conn)
}

// enrollAgent enrolls agent env/name with a join token and returns the
// TLS configuration it connects with.
func (tc *testController) enrollAgent(ctx context.Context, env, name string) (*tls.Config, error) {
	jt, err := tc.admin.CreateJoinToken(ctx, &cutoverv1.CreateJoinTokenRequest{Environment: env, Name: name})
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: env + "/" + name}}, key)
	if err != nil {
		return nil, err
	}
	conn, err := grpc.NewClient(tc.addr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
		MinVersion: tls.VersionTLS13, InsecureSkipVerify: true, VerifyConnection: identity.VerifyController(tc.ca)})))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	res, err := cutoverv1.NewAgentServiceClient(conn).Enroll(ctx, &cutoverv1.EnrollRequest{JoinToken: jt.GetToken(), Environment: env, Name: name, Csr: csr})
	if err != nil {
		return nil, fmt.Errorf("enroll %s/%s: %w", env, name, err)
	}
	return &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true, VerifyConnection: identity.VerifyController(tc.ca),
		Certificates: []tls.Certificate{{Certificate: [][]byte{res.GetCertificate()}, PrivateKey: key}}}, nil
}

// agentCreds returns the credentials of a fake agent for the controller at
// addr, enrolling it on first use.
func agentCreds(ctx context.Context, addr, env, name string, have *tls.Config) (*tls.Config, error) {
	if have != nil {
		return have, nil
	}
	v, ok := controllers.Load(addr)
	if !ok {
		return nil, fmt.Errorf("no test controller at %s", addr)
	}
	return v.(*testController).enrollAgent(ctx, env, name)
}
