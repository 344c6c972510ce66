package identity

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
	"net/url"
	"os"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/cutover-dev/cutover/pkg/errkind"
	ident "github.com/cutover-dev/cutover/pkg/identity"
	"github.com/cutover-dev/cutover/pkg/rpcerr"
	"github.com/cutover-dev/cutover/pkg/token"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// LoadOrEnroll returns the stored identity, or enrolls with the
// controller at addr when there is none or it has expired and
// cfg.JoinTokenFile is set. Without a join token file it returns Load's
// error, which says what to do.
func LoadOrEnroll(ctx context.Context, cfg Config, addr string) (*Identity, error) {
	return loadOrEnroll(ctx, cfg, addr, nil)
}

// loadOrEnroll is LoadOrEnroll; an enrollment asks for key's certificate
// (nil: a new key).
func loadOrEnroll(ctx context.Context, cfg Config, addr string, key *ecdsa.PrivateKey) (*Identity, error) {
	cfg.setDefaults()
	i, err := Load(cfg)
	switch {
	case err == nil:
		return i, nil
	case errors.Is(err, ErrNotEnrolled) && cfg.JoinTokenFile == "":
		return nil, fmt.Errorf("%w: give a join token with --join-token-file (create one with `cutoverctl agent token create --environment %s`)", err, cfg.Environment)
	case errors.Is(err, ErrNotEnrolled) || (errors.Is(err, ErrExpired) && cfg.JoinTokenFile != ""):
		if errors.Is(err, ErrExpired) {
			cfg.Log.Warn("the agent's certificate has expired; enrolling again with the join token", "err", err)
		}
		return enroll(ctx, cfg, addr, key)
	default:
		return nil, err
	}
}

// LoadOrEnrollRetrying is LoadOrEnroll, retried with a backoff that
// doubles from minBackoff to maxBackoff while the controller answers
// Unavailable (it is not up yet, or not reachable), going round addrs (the
// controllers that share one etcd; any of them enrolls). Any other error
// is returned at once: a refused token needs a new one. When ctx ends
// first it returns ctx.Err().
func LoadOrEnrollRetrying(ctx context.Context, cfg Config, addrs []string, minBackoff, maxBackoff time.Duration) (*Identity, error) {
	cfg.setDefaults()
	if len(addrs) == 0 {
		return nil, errors.New("enroll: no controller address")
	}
	// One key for every attempt: when an answer is lost after the
	// controller enrolled the agent, the controller answers the same
	// token and key again, and refuses another key (enrolled already).
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate the agent's key: %w", err)
	}
	backoff := minBackoff
	for i := 0; ; i++ {
		addr := addrs[i%len(addrs)]
		id, err := loadOrEnroll(ctx, cfg, addr, key)
		if err == nil {
			return id, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if !errors.Is(err, errkind.Unavailable) { // enrollError gives every status its kind
			return nil, fmt.Errorf("enroll with %s: %w", addr, err)
		}
		cfg.Log.Warn("cannot reach the controller to enroll; retrying", "err", err, "in", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// Enroll makes a new key and asks the controller at addr for a
// certificate with the join token of cfg.JoinTokenFile, then stores them
// in cfg.Dir (replacing any previous identity) and returns the identity.
// Before it sends the token it checks that the server is the controller
// whose CA the token names (or, with cfg.CAFile, the CA in that file,
// which must have the token's hash). Errors never contain the token's
// secret.
func Enroll(ctx context.Context, cfg Config, addr string) (*Identity, error) {
	return enroll(ctx, cfg, addr, nil)
}

// enroll is Enroll with key (nil: a new one).
func enroll(ctx context.Context, cfg Config, addr string, key *ecdsa.PrivateKey) (*Identity, error) {
	cfg.setDefaults()
	want := cfg.agent()
	if err := want.Validate(); err != nil {
		return nil, fmt.Errorf("enroll: %w", err)
	}
	tok, err := readJoinToken(cfg.JoinTokenFile)
	if err != nil {
		return nil, err
	}
	verify := ident.VerifyPinnedController(tok.CAHash)
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read the CA file: %w", err)
		}
		pool, hashes, err := parseCAs(pem)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", cfg.CAFile, err)
		}
		if !slices.Contains(hashes, tok.CAHash) {
			return nil, fmt.Errorf("%w: the CA in %s is not the one the join token names; is the token from another controller?", ident.ErrCAHashMismatch, cfg.CAFile)
		}
		verify = ident.VerifyController(pool)
	}

	if key == nil {
		if key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			return nil, fmt.Errorf("generate the agent's key: %w", err)
		}
	}
	csr, err := newCSR(want, key)
	if err != nil {
		return nil, err
	}
	var resp *cutoverv1.EnrollResponse
	err = dial(ctx, addr, verify, func(c cutoverv1.AgentServiceClient) error {
		var err error
		resp, err = c.Enroll(ctx, &cutoverv1.EnrollRequest{JoinToken: tok.Join(), Environment: want.Environment, Name: want.Name, Csr: csr})
		return err
	})
	if err != nil {
		return nil, enrollError(addr, tok.ID, err)
	}
	tc, roots, caPEM, err := checkIssued(resp.GetCertificate(), resp.GetCaCertificate(), key, want, tok.CAHash)
	if err != nil {
		return nil, fmt.Errorf("enroll with the controller at %s: the controller's answer: %w; nothing was stored", addr, err)
	}
	if err := store(cfg.Dir, tc.Leaf, key, caPEM); err != nil {
		return nil, err
	}
	cfg.Log.Info("enrolled with the controller", "identity", want.URI(),
		"token_id", tok.ID, "not_after", tc.Leaf.NotAfter, "dir", cfg.Dir)
	return newIdentity(cfg, want, tc, roots), nil
}

// readJoinToken reads and parses a join token file; errors name the file
// and never hold the secret.
func readJoinToken(path string) (token.Token, error) {
	if path == "" {
		return token.Token{}, errors.New("enroll: no join token file (--join-token-file)")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return token.Token{}, fmt.Errorf("read the join token: %w", err)
	}
	tok, err := token.ParseJoin(string(b))
	if err != nil {
		return token.Token{}, fmt.Errorf("join token file %s: %w", path, err)
	}
	return tok, nil
}

// newCSR returns a DER CSR for a's key and identity.
func newCSR(a ident.Agent, key *ecdsa.PrivateKey) ([]byte, error) {
	u, err := url.Parse(a.URI())
	if err != nil {
		return nil, err
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: a.String()},
		URIs:    []*url.URL{u},
	}, key)
	if err != nil {
		return nil, fmt.Errorf("create the certificate signing request: %w", err)
	}
	return der, nil
}

// dial connects to addr with TLS checked by verify, calls call, and
// closes the connection. When the handshake fails, the error is verify's,
// not gRPC's wrapping of it.
func dial(ctx context.Context, addr string, verify func(tls.ConnectionState) error, call func(cutoverv1.AgentServiceClient) error) error {
	var (
		mu        sync.Mutex
		verifyErr error
	)
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS13,
		InsecureSkipVerify: true, // verify checks the chain and the controller URI
		VerifyConnection: func(cs tls.ConnectionState) error {
			err := verify(cs)
			mu.Lock()
			verifyErr = err
			mu.Unlock()
			return err
		},
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		return fmt.Errorf("connect to %s: %w", addr, err)
	}
	defer conn.Close()
	err = call(cutoverv1.NewAgentServiceClient(conn))
	mu.Lock()
	defer mu.Unlock()
	if err != nil && verifyErr != nil {
		return verifyErr
	}
	return err
}

// enrollError explains a failed Enroll call.
func enrollError(addr, tokenID string, err error) error {
	if _, ok := status.FromError(err); !ok {
		return fmt.Errorf("enroll with the controller at %s: %w; the join token was not sent", addr, err)
	}
	var advice string
	switch status.Code(err) {
	case codes.Unauthenticated:
		advice = fmt.Sprintf(": the controller refused join token %s (unknown, used up, expired or revoked); create a new one with `cutoverctl agent token create`", tokenID)
	case codes.PermissionDenied:
		advice = fmt.Sprintf(": join token %s is not for this environment or name; check --environment and --name, or create a token for them", tokenID)
	case codes.Unavailable:
		advice = ": is --controller right and the controller running?"
	}
	return fmt.Errorf("enroll with the controller at %s: %w%s", addr, rpcerr.FromStatus(err), advice)
}

// checkIssued parses and checks a certificate the controller issued for
// key and want, and its CA certificate, whose hash must be caHash. It
// returns the certificate as a TLS certificate, a pool that holds the CA,
// and the CA as PEM.
func checkIssued(certDER, caDER []byte, key *ecdsa.PrivateKey, want ident.Agent, caHash string) (*tls.Certificate, *x509.CertPool, []byte, error) {
	cert, err := x509.ParseCertificate(certDER)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("the certificate: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("the CA certificate: %w", err)
	}
	if h := ident.CAHash(ca); h != caHash {
		return nil, nil, nil, fmt.Errorf("%w: the CA certificate it sent has hash %s, the token %s", ident.ErrCAHashMismatch, h, caHash)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	if err := checkCert(cert, key, want, pool); err != nil {
		return nil, nil, nil, err
	}
	tc, err := certKey(cert, key)
	if err != nil {
		return nil, nil, nil, err
	}
	return tc, pool, pemBlock("CERTIFICATE", ca.Raw), nil
}

// checkCert checks that cert is for key and want, and chains to a CA in
// roots.
func checkCert(cert *x509.Certificate, key *ecdsa.PrivateKey, want ident.Agent, roots *x509.CertPool) error {
	if !key.PublicKey.Equal(cert.PublicKey) {
		return errors.New("the certificate is not for the key this agent sent")
	}
	got, err := ident.AgentFromCert(cert)
	if err != nil {
		return err
	}
	if got != want {
		return fmt.Errorf("the certificate is for %s, not %s", got, want)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: cert.NotBefore.Add(1),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return fmt.Errorf("the certificate does not chain to the controller's CA: %w", err)
	}
	return nil
}
