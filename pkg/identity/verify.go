package identity

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Errors of VerifyController and VerifyPinnedController; each error they
// return wraps one of these, with what to do next.
var (
	// ErrNotController: the server's certificate chains to the CA but
	// has no cutover://controller URI.
	ErrNotController = errors.New("the server's certificate is not a cutover controller's (no " + ControllerURI + " URI)")
	// ErrUnknownAuthority: the server's certificate does not chain to
	// the CA the client trusts.
	ErrUnknownAuthority = errors.New("certificate signed by an unknown authority")
	// ErrCAHashMismatch: none of the server's certificates has the CA
	// hash of the join token.
	ErrCAHashMismatch = errors.New("the controller's CA does not match the join token's CA hash")
)

// VerifyController returns a tls.Config.VerifyConnection function for
// clients of the controller. Use it with InsecureSkipVerify: true, which
// turns off only the standard host name check; this function verifies
// the chain the server sent (the leaf, with the rest as intermediates)
// against roots for server authentication at the current time, and
// requires the leaf to carry ControllerURI.
func VerifyController(roots *x509.CertPool) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		return verifyController(cs.PeerCertificates, roots, time.Now())
	}
}

// VerifyPinnedController returns a tls.Config.VerifyConnection function
// for an agent that has no CA certificate yet, only a join token's CA
// hash (see CAHash): among the certificates the server sent (the
// controller sends its CA after its leaf), it takes the one whose hash is
// caHash as the only root, then verifies as VerifyController does.
func VerifyPinnedController(caHash string) func(tls.ConnectionState) error {
	caHash = strings.ToLower(strings.TrimSpace(caHash))
	return func(cs tls.ConnectionState) error {
		roots := x509.NewCertPool()
		found := false
		for _, c := range cs.PeerCertificates {
			if CAHash(c) == caHash {
				roots.AddCert(c)
				found = true
			}
		}
		if !found {
			return fmt.Errorf("%w: wrong controller, or a token from another one (the server sent %d certificates; check --controller and the join token)", ErrCAHashMismatch, len(cs.PeerCertificates))
		}
		return verifyController(cs.PeerCertificates, roots, time.Now())
	}
}

func verifyController(peer []*x509.Certificate, roots *x509.CertPool, now time.Time) error {
	if len(peer) == 0 {
		return errors.New("the server sent no certificate: is it a cutover controller?")
	}
	err := verifyChain(peer, roots, now, x509.ExtKeyUsageServerAuth)
	var unknown x509.UnknownAuthorityError
	switch {
	case errors.As(err, &unknown):
		return fmt.Errorf("%w: is --ca-file the controller's <data-dir>/tls/ca.crt? (server certificate %q, issued by %q)",
			ErrUnknownAuthority, peer[0].Subject.CommonName, peer[0].Issuer.CommonName)
	case err != nil:
		return fmt.Errorf("the server's certificate: %w", err)
	}
	if !IsController(peer[0]) {
		return fmt.Errorf("%w: it may be another service at this address", ErrNotController)
	}
	return nil
}

// VerifyAgent checks a chain presented by an agent, as one agent checks
// another (agent/peer): the leaf must chain to roots at now for client
// authentication (what agent certificates are issued for) and carry one
// agent URI, which it returns. It does not look at the environment or the
// name: the caller compares them with whom it expects.
func VerifyAgent(chain []*x509.Certificate, roots *x509.CertPool, now time.Time) (Agent, error) {
	if len(chain) == 0 {
		return Agent{}, fmt.Errorf("%w: no certificate was presented", ErrNotAgent)
	}
	if err := verifyChain(chain, roots, now, x509.ExtKeyUsageClientAuth); err != nil {
		return Agent{}, fmt.Errorf("the agent certificate %q does not verify against the controller's CA: %w", chain[0].Subject.CommonName, err)
	}
	return AgentFromCert(chain[0])
}

// verifyChain checks that the leaf of chain (the rest are its
// intermediates) chains to roots at now for usage. It returns
// x509's error as it is: the callers say whose certificate failed.
func verifyChain(chain []*x509.Certificate, roots *x509.CertPool, now time.Time, usage x509.ExtKeyUsage) error {
	if len(chain) == 0 {
		return errors.New("no certificate was presented")
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	_, err := chain[0].Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{usage},
	})
	return err
}
