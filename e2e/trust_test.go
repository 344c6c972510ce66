package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/cutover-dev/cutover/internal/localcluster"
	"github.com/cutover-dev/cutover/pkg/identity"
	"github.com/cutover-dev/cutover/pkg/manifest"
	"github.com/cutover-dev/cutover/pkg/poll"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// trustRPCTimeout bounds each call the trust tests make themselves.
const trustRPCTimeout = 10 * time.Second

// caPool returns a pool holding the controller's CA certificate.
func (c *cluster) caPool() *x509.CertPool {
	c.t.Helper()
	pem, err := os.ReadFile(c.CAFile)
	if err != nil {
		c.t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		c.t.Fatalf("%s holds no certificate", c.CAFile)
	}
	return pool
}

// agentClient dials the controller over TLS 1.3 presenting cert as its
// client certificate (none if nil), as an agent does, and returns an
// AgentService client; the connection is closed when the test ends.
func (c *cluster) agentClient(cert *tls.Certificate) cutoverv1.AgentServiceClient {
	c.t.Helper()
	cfg := &tls.Config{RootCAs: c.caPool(), MinVersion: tls.VersionTLS13}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	conn, err := grpc.NewClient(c.Addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { _ = conn.Close() })
	return cutoverv1.NewAgentServiceClient(conn)
}

// agentCSR makes a key and a CSR for agent a, as cutover-agent does.
func agentCSR(t *testing.T, a identity.Agent) (*ecdsa.PrivateKey, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(a.URI())
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: a.String()}, URIs: []*url.URL{u}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return key, csr
}

// enrollAs enrolls agent env/name through the real Enroll RPC with a join
// token made for it, its key and CSR made here, and returns its client
// certificate.
func (c *cluster) enrollAs(env, name string) *tls.Certificate {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), trustRPCTimeout)
	defer cancel()
	jt, err := c.Admin.CreateJoinToken(ctx, &cutoverv1.CreateJoinTokenRequest{Environment: env, Name: name})
	if err != nil {
		c.t.Fatalf("CreateJoinToken(%s/%s): %v", env, name, err)
	}
	a := identity.Agent{Environment: env, Name: name}
	key, csr := agentCSR(c.t, a)
	resp, err := c.agentClient(nil).Enroll(ctx, &cutoverv1.EnrollRequest{JoinToken: jt.GetToken(), Environment: env, Name: name, Csr: csr})
	if err != nil {
		c.t.Fatalf("Enroll(%s): %v", a, err)
	}
	leaf, err := x509.ParseCertificate(resp.GetCertificate())
	if err != nil {
		c.t.Fatal(err)
	}
	if got, err := identity.AgentFromCert(leaf); err != nil || got != a {
		c.t.Fatalf("Enroll gave a certificate for %v (%v), want %s", got, err, a)
	}
	return &tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf}
}

// listedAgent returns the agent name as ListAgents shows it across every
// environment, or nil if it is not listed.
func (c *cluster) listedAgent(name string) *cutoverv1.Agent {
	c.t.Helper()
	resp, err := c.Admin.ListAgents(context.Background(), &cutoverv1.ListAgentsRequest{})
	if err != nil {
		c.t.Fatalf("ListAgents: %v", err)
	}
	for _, a := range resp.GetAgents() {
		if a.GetName() == name {
			return a
		}
	}
	return nil
}

// checkNotConnected fails the test if agent name is listed connected.
func (c *cluster) checkNotConnected(name string) {
	c.t.Helper()
	if a := c.listedAgent(name); a.GetConnected() {
		c.t.Errorf("agent %s is listed connected:\n%s", name, asJSON(a))
	}
}

// checkAudited asserts that the audit log has an entry for method with
// code (a gRPC code name) and, if subject is set, that subject.
func (c *cluster) checkAudited(method, code, subject string) {
	c.t.Helper()
	resp, err := c.Admin.ListAuditEvents(context.Background(), &cutoverv1.ListAuditEventsRequest{Subject: subject})
	if err != nil {
		c.t.Errorf("ListAuditEvents: %v", err)
		return
	}
	for _, e := range resp.GetEvents() {
		if strings.HasSuffix(e.GetMethod(), "/"+method) && e.GetCode() == code && (subject == "" || e.GetSubject() == subject) {
			return
		}
	}
	c.t.Errorf("the audit log has no entry %s %s by %q among %d entries", method, code, subject, len(resp.GetEvents()))
}

// foreignAgentCert makes a CA that is not the controller's and issues it
// a client certificate that names agent a as the controller's would.
func foreignAgentCert(t *testing.T, a identity.Agent) *tls.Certificate {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "cutover CA"},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(a.URI())
	leafDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(2),
		Subject: pkix.Name{CommonName: a.String()}, URIs: []*url.URL{u}, NotBefore: now.Add(-time.Minute), NotAfter: now.Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(leafDER)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Certificate{Certificate: [][]byte{leafDER, caDER}, PrivateKey: key, Leaf: leaf}
}

// session is an AgentService.Connect stream opened by the test.
type session struct {
	ended chan error // the error that ended the stream
}

// openSession opens AgentService.Connect with client and sends a hello
// for env/name; the stream is cancelled when the test ends.
func (c *cluster) openSession(client cutoverv1.AgentServiceClient, env, name string) *session {
	c.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c.t.Cleanup(cancel)
	s := &session{ended: make(chan error, 1)}
	stream, err := client.Connect(ctx)
	if err != nil {
		s.ended <- err
		return s
	}
	if err := stream.Send(&cutoverv1.ConnectRequest{Msg: &cutoverv1.ConnectRequest_Hello{Hello: &cutoverv1.AgentHello{
		Name: name, Environment: env, Status: &cutoverv1.AgentStatus{}}}}); err != nil && !errors.Is(err, io.EOF) {
		s.ended <- err
		return s
	}
	go func() {
		for {
			if _, err := stream.Recv(); err != nil {
				s.ended <- err
				return
			}
		}
	}()
	return s
}

// refusal waits up to trustRPCTimeout for the stream to end and returns
// why; nil if it is still open then.
func (s *session) refusal() error {
	t := time.NewTimer(trustRPCTimeout)
	defer t.Stop()
	select {
	case err := <-s.ended:
		return err
	case <-t.C:
		return nil
	}
}

// open reports an error if the stream has ended.
func (s *session) open() error {
	select {
	case err := <-s.ended:
		s.ended <- err
		return fmt.Errorf("the session ended: %w", err)
	default:
		return nil
	}
}

// TestTrustRefusesPlaintextAndForeignCertificates checks that a client
// without TLS, with TLS below 1.3, or with a certificate of another CA
// that claims an agent identity gets nothing, and that nothing of it is
// recorded: no such agent is listed.
func TestTrustRefusesPlaintextAndForeignCertificates(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), trustRPCTimeout)
	defer cancel()
	c.createEnv("staging", false)
	admin, err := c.AdminToken()
	if err != nil {
		t.Fatal(err)
	}

	t.Log("plaintext gRPC, even with the admin token")
	plain, err := grpc.NewClient(c.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	_, err = cutoverv1.NewAdminServiceClient(plain).ListEnvironments(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+admin),
		&cutoverv1.ListEnvironmentsRequest{})
	if status.Code(err) != codes.Unavailable {
		t.Errorf("plaintext ListEnvironments = %v, want UNAVAILABLE (no TLS handshake, no answer)", err)
	}

	t.Log("TLS 1.2")
	if conn, err := tls.Dial("tcp", c.Addr, &tls.Config{RootCAs: c.caPool(), MaxVersion: tls.VersionTLS12, ServerName: "127.0.0.1"}); err == nil {
		conn.Close()
		t.Errorf("a TLS 1.2 handshake succeeded")
	} else {
		t.Logf("TLS 1.2: %v", err)
	}

	t.Log("a certificate of another CA that says it is staging/evil")
	evil := identity.Agent{Environment: "staging", Name: "evil"}
	foreign := c.agentClient(foreignAgentCert(t, evil))
	err = c.openSession(foreign, evil.Environment, evil.Name).refusal()
	if err == nil {
		t.Fatalf("Connect with a foreign certificate was taken")
	}
	if code := status.Code(err); code != codes.Unavailable && code != codes.Unauthenticated && code != codes.PermissionDenied {
		t.Errorf("Connect with a foreign certificate = %v, want the handshake to fail or the call refused", err)
	}
	t.Logf("Connect with a foreign certificate: %v", err)
	_, err = foreign.GetManifest(ctx, &cutoverv1.GetManifestRequest{ReleaseId: strings.Repeat("0", 64)})
	if err == nil {
		t.Errorf("GetManifest with a foreign certificate answered")
	}
	// The foreign certificate with the admin token does not get through either.
	_, err = cutoverv1.NewAdminServiceClient(foreignConn(t, c, foreignAgentCert(t, evil), admin)).ListEnvironments(ctx, &cutoverv1.ListEnvironmentsRequest{})
	if err == nil {
		t.Errorf("ListEnvironments with a foreign client certificate (and the admin token) answered")
	}
	if a := c.listedAgent(evil.Name); a != nil {
		t.Errorf("the foreign agent is listed:\n%s", asJSON(a))
	}

	t.Log("the same controller serves a TLS client with the admin token")
	envs, err := c.Admin.ListEnvironments(ctx, &cutoverv1.ListEnvironmentsRequest{})
	if err != nil || len(envs.GetEnvironments()) != 1 {
		t.Errorf("ListEnvironments over TLS = %v, %v; want staging alone", envs, err)
	}
}

// foreignConn dials with a client certificate and a bearer token.
func foreignConn(t *testing.T, c *cluster, cert *tls.Certificate, token string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(c.Addr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
		RootCAs: c.caPool(), MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{*cert}})),
		grpc.WithPerRPCCredentials(localcluster.Bearer(token)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// TestTrustHelloMustMatchCertificate enrolls staging/fe-x through the real
// Enroll RPC and opens a session whose hello says production: the stream
// fails with PERMISSION_DENIED and the agent is not listed connected. The
// same certificate with a truthful hello is taken.
func TestTrustHelloMustMatchCertificate(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.createEnv("staging", false)
	c.createEnv("production", false)
	cert := c.enrollAs("staging", "fe-x")
	client := c.agentClient(cert)

	err := c.openSession(client, "production", "fe-x").refusal()
	wantStatus(t, "hello for production with a staging certificate", err, codes.PermissionDenied, "production/fe-x", "staging/fe-x")
	c.checkNotConnected("fe-x")
	c.checkAudited("Connect", "PERMISSION_DENIED", "agent:staging/fe-x")

	err = c.openSession(client, "staging", "fe-y").refusal()
	wantStatus(t, "hello naming another agent", err, codes.PermissionDenied, "staging/fe-y")
	c.checkNotConnected("fe-y")

	t.Log("the same certificate with a truthful hello")
	s := c.openSession(client, "staging", "fe-x")
	c.waitFor(10*time.Second, "fe-x connected", func() error {
		if err := s.open(); err != nil {
			return poll.Permanent(err)
		}
		if a := c.listedAgent("fe-x"); !a.GetConnected() || a.GetEnvironment() != "staging" {
			return fmt.Errorf("listed as %v", a)
		}
		return nil
	})
}

// TestTrustAgentFetchesOnlyItsEnvironment deploys examples/hello to
// production with a real agent, then asks for the release's manifest and
// chunks as an agent enrolled for staging: PERMISSION_DENIED for both,
// while an agent enrolled for production gets them.
func TestTrustAgentFetchesOnlyItsEnvironment(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), deployDeadline)
	defer cancel()
	src := filepath.Join(c.dir, "src")
	copyApp(t, src, "v1")
	c.createEnv("production", false)
	c.createEnv("staging", false)
	c.startAgents("production", "fe-1")
	c.registerApp(src)
	id := c.createDeployment("production", "hello", "v1")
	if _, err := c.Admin.StartDeployment(ctx, &cutoverv1.StartDeploymentRequest{Id: id}); err != nil {
		t.Fatalf("StartDeployment: %v", err)
	}
	release := releaseOf(t, c.waitDeployment(id, deployed))

	stagingAgent := c.agentClient(c.enrollAs("staging", "fe-x"))
	prodAgent := c.agentClient(c.enrollAs("production", "fe-y"))

	_, err := stagingAgent.GetManifest(ctx, &cutoverv1.GetManifestRequest{ReleaseId: release})
	wantStatus(t, "GetManifest of a production release by a staging agent", err, codes.PermissionDenied)
	c.checkAudited("GetManifest", "PERMISSION_DENIED", "agent:staging/fe-x")

	mres, err := prodAgent.GetManifest(ctx, &cutoverv1.GetManifestRequest{ReleaseId: release})
	if err != nil {
		t.Fatalf("GetManifest by a production agent: %v", err)
	}
	m, err := manifest.Decode(mres.GetManifest())
	if err != nil {
		t.Fatal(err)
	}
	var ids [][]byte
	for _, id := range m.ChunkIDs()[:min(3, len(m.ChunkIDs()))] {
		ids = append(ids, slices.Clone(id[:]))
	}
	fetch := func(client cutoverv1.AgentServiceClient, env, name string) (int, error) {
		stream, err := client.FetchChunks(ctx, &cutoverv1.FetchChunksRequest{ReleaseId: release, Ids: ids, Environment: env, Agent: name})
		if err != nil {
			return 0, err
		}
		n := 0
		for {
			resp, err := stream.Recv()
			if err != nil {
				if errors.Is(err, io.EOF) {
					return n, nil
				}
				return n, err
			}
			n += len(resp.GetChunks())
		}
	}
	n, err := fetch(stagingAgent, "staging", "fe-x")
	wantStatus(t, "FetchChunks of a production release by a staging agent", err, codes.PermissionDenied)
	if n != 0 {
		t.Errorf("the staging agent received %d chunks", n)
	}
	// Saying production in the request changes nothing: the certificate decides.
	n, err = fetch(stagingAgent, "production", "fe-1")
	wantStatus(t, "FetchChunks by a staging agent that says it is production/fe-1", err, codes.PermissionDenied)
	if n != 0 {
		t.Errorf("the staging agent received %d chunks", n)
	}
	c.checkAudited("FetchChunks", "PERMISSION_DENIED", "agent:staging/fe-x")
	if n, err := fetch(prodAgent, "production", "fe-y"); err != nil || n != len(ids) {
		t.Errorf("FetchChunks by a production agent: %d chunks, %v; want %d", n, err, len(ids))
	}
}

// TestTrustGrpcurl checks the grpcurl flow of the README on a TLS
// controller: `grpcurl -cacert CA ADDR list` and describe work without a
// token, a call without a token fails with Unauthenticated, the same call
// with `-H "authorization: Bearer $TOKEN"` answers, and neither plaintext
// nor TLS without the controller's CA gets anything.
func TestTrustGrpcurl(t *testing.T) {
	t.Parallel()
	grpcurl := tool(t, "grpcurl")
	c := newCluster(t)
	c.createEnv("staging", false)
	token, err := c.AdminToken()
	if err != nil {
		t.Fatal(err)
	}
	list := c.grpcurl(grpcurl, append(c.grpcurlTLS(""), c.Addr, "list")...)
	for _, svc := range []string{"cutover.v1.AdminService", "cutover.v1.AgentService", "grpc.health.v1.Health"} {
		if !strings.Contains(list, svc+"\n") {
			t.Errorf("grpcurl -cacert list lacks %s:\n%s", svc, list)
		}
	}
	if desc := c.grpcurl(grpcurl, append(c.grpcurlTLS(""), c.Addr, "describe", "cutover.v1.AdminService.ListEnvironments")...); !strings.Contains(desc, "rpc ListEnvironments") {
		t.Errorf("grpcurl describe: %s", desc)
	}
	method := "cutover.v1.AdminService/ListEnvironments"
	out, errOut, err := runGrpcurl(grpcurl, append(c.grpcurlTLS(""), c.Addr, method)...)
	if err == nil || !strings.Contains(out+errOut, "Unauthenticated") {
		t.Errorf("ListEnvironments without a token: %v, want Unauthenticated:\n%s%s", err, out, errOut)
	}
	out, errOut, err = runGrpcurl(grpcurl, append(c.grpcurlTLS("cutover.0123456789abcdef.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), c.Addr, method)...)
	if err == nil || !strings.Contains(out+errOut, "Unauthenticated") {
		t.Errorf("ListEnvironments with a made-up token: %v, want Unauthenticated:\n%s%s", err, out, errOut)
	}
	resp := &cutoverv1.ListEnvironmentsResponse{}
	out = c.grpcurl(grpcurl, append(c.grpcurlTLS(token), c.Addr, method)...)
	if err := protojson.Unmarshal([]byte(out), resp); err != nil || len(resp.GetEnvironments()) != 1 || resp.GetEnvironments()[0].GetName() != "staging" {
		t.Errorf("ListEnvironments with the admin token: %v:\n%s", err, out)
	}
	for _, args := range [][]string{
		{"-plaintext", "-H", "authorization: Bearer " + token, c.Addr, method},
		{"-H", "authorization: Bearer " + token, c.Addr, method}, // the system's roots, not the controller's CA
		{"-plaintext", c.Addr, "list"},
	} {
		if out, errOut, err := runGrpcurl(grpcurl, args...); err == nil {
			t.Errorf("grpcurl %s succeeded:\n%s", strings.Join(args, " "), out)
		} else {
			t.Logf("grpcurl %s: %v %s", args[0], err, strings.TrimSpace(errOut))
		}
	}
}
