package auth

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/controlplane/store"
	"github.com/cutover-dev/cutover/pkg/errkind"
	"github.com/cutover-dev/cutover/pkg/identity"
	"github.com/cutover-dev/cutover/pkg/token"
)

// fakeSigner issues certificates that are only records: the real CA is
// tested in controlplane/pki.
type fakeSigner struct {
	serial int64
	clock  func() time.Time
}

func (f *fakeSigner) SignAgent(csr []byte, a identity.Agent, enrollment string, ttl time.Duration) (*x509.Certificate, error) {
	if !strings.HasPrefix(string(csr), "csr") { // "csr", or "csr-KEY" for a key of another agent
		return nil, errkind.New(errkind.InvalidArgument, "bad csr")
	}
	f.serial++
	return &x509.Certificate{SerialNumber: big.NewInt(f.serial), NotAfter: f.clock().Add(ttl), Subject: pkix.Name{SerialNumber: enrollment},
		RawSubjectPublicKeyInfo: csr}, nil
}
func (f *fakeSigner) CAHash() string    { return strings.Repeat("ab", 32) }
func (f *fakeSigner) CACertDER() []byte { return []byte("ca") }

type fixture struct {
	svc *Service
	now time.Time
	dir string
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{now: time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC), dir: t.TempDir()}
	st, err := store.Open(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clock := func() time.Time { return f.now }
	f.svc = New(Config{Store: st, Signer: &fakeSigner{clock: clock}, Clock: clock})
	return f
}

func TestBootstrapAndAuthenticate(t *testing.T) {
	f := newFixture(t)
	path := filepath.Join(f.dir, "bootstrap.token")
	if created, err := f.svc.Bootstrap(path); err != nil || !created {
		t.Fatalf("Bootstrap = %v, %v", created, err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("bootstrap file: %v, %v", fi, err)
	}
	raw, _ := os.ReadFile(path)
	s, err := f.svc.Authenticate(strings.TrimSpace(string(raw)))
	if err != nil || s.Role != Admin || s.Name != BootstrapSubject || s.Environment != "" {
		t.Fatalf("Authenticate(bootstrap) = %+v, %v", s, err)
	}
	if created, err := f.svc.Bootstrap(path + "2"); err != nil || created {
		t.Errorf("second Bootstrap = %v, %v; want nothing done", created, err)
	}

	ctx := WithSubject(context.Background(), s)
	secret, rec, err := f.svc.CreateToken(ctx, "alice", Deployer, "production", time.Hour)
	if err != nil || rec.CreatedBy != BootstrapSubject || strings.Contains(rec.Hash, secret) {
		t.Fatalf("CreateToken = %v, %+v", err, rec)
	}
	if got, err := f.svc.Authenticate(secret); err != nil || got.Name != "alice" || got.Role != Deployer || got.Environment != "production" {
		t.Fatalf("Authenticate(alice) = %+v, %v", got, err)
	}
	wrong, _ := token.ParseOperator(secret)
	wrong.Secret = token.New().Secret
	f.now = f.now.Add(time.Hour)
	for name, tok := range map[string]string{"expired": secret, "wrong secret": wrong.Operator(), "unknown": token.New().Operator(), "garbage": "x"} {
		if _, err := f.svc.Authenticate(tok); !errors.Is(err, errkind.Unauthenticated) {
			t.Errorf("%s: Authenticate = %v, want Unauthenticated", name, err)
		}
	}
	secret2, rec2, _ := f.svc.CreateToken(ctx, "bob", Viewer, "", 0)
	if _, err := f.svc.RevokeToken(ctx, rec2.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Authenticate(secret2); !errors.Is(err, errkind.Unauthenticated) {
		t.Errorf("revoked: %v", err)
	}
	if _, err := f.svc.RevokeToken(ctx, rec2.ID); !errors.Is(err, errkind.FailedPrecondition) {
		t.Errorf("revoke twice: %v", err)
	}
	for _, bad := range []string{"", "a b", "agent:x", "controller"} {
		if _, _, err := f.svc.CreateToken(ctx, bad, Viewer, "", 0); !errors.Is(err, errkind.InvalidArgument) {
			t.Errorf("CreateToken(subject %q) = %v", bad, err)
		}
	}
}

func TestEnrollment(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	prod := identity.Agent{Environment: "production", Name: "fe-1"}
	once, _, err := f.svc.CreateJoinToken(ctx, "production", "", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if tok, err := token.ParseJoin(once); err != nil || tok.CAHash != strings.Repeat("ab", 32) {
		t.Fatalf("join token %v carries no CA hash", err)
	}
	if _, err := f.svc.Enroll(ctx, once, prod, []byte("bad")); !errors.Is(err, errkind.InvalidArgument) {
		t.Fatalf("bad csr: %v", err)
	}
	if _, err := f.svc.Enroll(ctx, once, identity.Agent{Environment: "production", Name: "FE_1"}, []byte("csr")); !errors.Is(err, errkind.InvalidArgument) {
		t.Fatalf("bad agent name: %v", err)
	}
	cert, err := f.svc.Enroll(ctx, once, prod, []byte("csr"))
	if err != nil {
		t.Fatalf("Enroll = %v (a failed enrollment must not use the token up)", err)
	}
	if _, err := f.svc.AuthenticateAgent(prod, cert); err != nil {
		t.Fatal(err)
	}
	fe2 := identity.Agent{Environment: "production", Name: "fe-2"}
	if _, err := f.svc.Enroll(ctx, once, fe2, []byte("csr")); !errors.Is(err, errkind.Unauthenticated) || !strings.Contains(err.Error(), "used already") {
		t.Errorf("token used twice: %v", err)
	}
	// fe-1 asks again with its token and key (its answer was lost): it is
	// answered under the same enrollment, the token used once; with
	// another key it is refused.
	twice, err := f.svc.Enroll(ctx, once, prod, []byte("csr"))
	if err != nil {
		t.Fatalf("the same agent, token and key again: %v", err)
	}
	if twice.Subject.SerialNumber != cert.Subject.SerialNumber || twice.SerialNumber.Cmp(cert.SerialNumber) == 0 {
		t.Errorf("asked again: enrollment %q (want %q), serial %v (want a new one)", twice.Subject.SerialNumber, cert.Subject.SerialNumber, twice.SerialNumber)
	}
	if _, err := f.svc.AuthenticateAgent(prod, twice); err != nil {
		t.Errorf("the certificate answered again is refused: %v", err)
	}
	if _, err := f.svc.Enroll(ctx, once, prod, []byte("csr-another-key")); !errors.Is(err, errkind.Unauthenticated) {
		t.Errorf("the same name and token with another key: %v, want the token used already", err)
	}
	other, _, _ := f.svc.CreateJoinToken(ctx, "staging", "", 0, 2)
	if _, err := f.svc.Enroll(ctx, other, fe2, []byte("csr")); !errors.Is(err, errkind.PermissionDenied) {
		t.Errorf("token of another environment: %v", err)
	}
	named, _, _ := f.svc.CreateJoinToken(ctx, "production", "fe-9", 0, 0)
	if _, err := f.svc.Enroll(ctx, named, fe2, []byte("csr")); !errors.Is(err, errkind.PermissionDenied) {
		t.Errorf("token for another name: %v", err)
	}
	expiring, _, _ := f.svc.CreateJoinToken(ctx, "production", "", time.Minute, 5)
	again, _, _ := f.svc.CreateJoinToken(ctx, "production", "", 2*time.Hour, 5)
	if _, err := f.svc.Enroll(ctx, again, prod, []byte("csr")); !errors.Is(err, errkind.FailedPrecondition) {
		t.Errorf("enrolled twice: %v", err)
	}

	f.now = f.now.Add(time.Hour)
	if _, err := f.svc.Enroll(ctx, expiring, fe2, []byte("csr")); !errors.Is(err, errkind.Unauthenticated) || !strings.Contains(err.Error(), "expired") {
		t.Errorf("expired token: %v", err)
	}
	renewed, err := f.svc.Renew(ctx, prod, []byte("csr"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*x509.Certificate{cert, renewed} {
		if _, err := f.svc.AuthenticateAgent(prod, c); err != nil {
			t.Errorf("certificate %v refused during the overlap: %v", c.SerialNumber, err)
		}
	}
	if _, err := f.svc.AuthenticateAgent(identity.Agent{Environment: "staging", Name: "fe-1"}, cert); !errors.Is(err, errkind.PermissionDenied) {
		t.Errorf("another environment: %v", err)
	}

	var revoked []string
	f.svc.OnRevoke(func(a identity.Agent, reason string) { revoked = append(revoked, a.String()+": "+reason) })
	if _, err := f.svc.RevokeAgent(ctx, "staging", "fe-1"); !errors.Is(err, errkind.InvalidArgument) {
		t.Errorf("revoke in the wrong environment: %v", err)
	}
	if _, err := f.svc.RevokeAgent(ctx, "production", "fe-1"); err != nil {
		t.Fatal(err)
	}
	if len(revoked) != 1 || !strings.Contains(revoked[0], "production/fe-1") {
		t.Errorf("OnRevoke calls = %q", revoked)
	}
	if _, err := f.svc.AuthenticateAgent(prod, renewed); !errors.Is(err, errkind.PermissionDenied) {
		t.Errorf("revoked certificate accepted: %v", err)
	}
	if _, err := f.svc.Renew(ctx, prod, []byte("csr")); !errors.Is(err, errkind.PermissionDenied) {
		t.Errorf("revoked agent renewed: %v", err)
	}
	newCert, err := f.svc.Enroll(ctx, again, prod, []byte("csr"))
	if err != nil {
		t.Fatalf("enroll again after revocation: %v", err)
	}
	if _, err := f.svc.AuthenticateAgent(prod, renewed); !errors.Is(err, errkind.PermissionDenied) {
		t.Errorf("a certificate of the revoked enrollment is accepted again: %v", err)
	}
	if _, err := f.svc.AuthenticateAgent(prod, newCert); err != nil {
		t.Error(err)
	}
}
