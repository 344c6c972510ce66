package auth

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/pkg/appspec"
	"github.com/cutover-dev/cutover/pkg/errkind"
	"github.com/cutover-dev/cutover/pkg/identity"
	"github.com/cutover-dev/cutover/pkg/token"
)

// CreateJoinToken issues a token that lets uses agents (1 if 0) enroll in
// env, only under name if it is set, until ttl (DefaultJoinTokenTTL if 0)
// has passed. The environment need not exist yet. It returns the token
// (which carries the CA's hash) and its record.
func (s *Service) CreateJoinToken(ctx context.Context, env, name string, ttl time.Duration, uses int) (string, *model.JoinToken, error) {
	if err := appspec.ValidName(env); err != nil {
		return "", nil, fmt.Errorf("environment: %w", err)
	}
	if name != "" {
		if err := appspec.ValidName(name); err != nil {
			return "", nil, fmt.Errorf("name: %w", err)
		}
	}
	if ttl < 0 || uses < 0 {
		return "", nil, fmt.Errorf("ttl and uses must not be negative: %w", errkind.InvalidArgument)
	}
	if ttl == 0 {
		ttl = DefaultJoinTokenTTL
	}
	if uses == 0 {
		uses = 1
	}
	tok := token.New()
	tok.CAHash = s.cfg.Signer.CAHash()
	now := s.cfg.Clock()
	rec := &model.JoinToken{ID: tok.ID, Hash: tok.Hash(), Environment: env, Name: name, Uses: uses,
		CreateTime: now, ExpireTime: now.Add(ttl), CreatedBy: Actor(ctx)}
	if err := s.cfg.Store.Update(func(tx model.Tx) error { return tx.PutJoinToken(rec) }); err != nil {
		return "", nil, err
	}
	return tok.Join(), rec, nil
}

// Enroll checks a join token and issues the first certificate of the
// agent a for the CSR. The token's use is recorded in the same
// transaction as the enrollment. An agent enrolled with this token and
// the CSR's key that asks again (its answer was lost) gets a new
// certificate under the same enrollment, without using the token again. Unauthenticated for a malformed, unknown,
// wrong, used up or expired token; PermissionDenied for a token of another
// environment or name; FailedPrecondition for a name enrolled already and
// not revoked; InvalidArgument for a bad name or CSR.
func (s *Service) Enroll(ctx context.Context, joinToken string, a identity.Agent, csr []byte) (*x509.Certificate, error) {
	tok, err := token.ParseJoin(joinToken)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", err, errkind.Unauthenticated)
	}
	if err := a.Validate(); err != nil {
		return nil, err
	}
	var cert *x509.Certificate
	again := false
	err = s.cfg.Store.Update(func(tx model.Tx) error {
		jt, err := tx.JoinToken(tok.ID)
		if errors.Is(err, errkind.NotFound) || (err == nil && !tok.Matches(jt.Hash)) {
			return fmt.Errorf("the join token is not valid (unknown or wrong): %w", errkind.Unauthenticated)
		}
		if err != nil {
			return err
		}
		now := s.cfg.Clock()
		switch {
		case !now.Before(jt.ExpireTime):
			return fmt.Errorf("the join token %s expired at %s; create a new one with `cutoverctl agent token create --environment %s`: %w",
				jt.ID, jt.ExpireTime.UTC().Format(time.RFC3339), jt.Environment, errkind.Unauthenticated)
		case jt.Environment != a.Environment:
			return fmt.Errorf("the join token %s is for environment %s, not %s; nothing was changed: %w", jt.ID, jt.Environment, a.Environment, errkind.PermissionDenied)
		case jt.Name != "" && jt.Name != a.Name:
			return fmt.Errorf("the join token %s is for agent %s, not %s; nothing was changed: %w", jt.ID, jt.Name, a.Name, errkind.PermissionDenied)
		}
		prev, err := tx.Enrollment(a.Name)
		if err != nil && !errors.Is(err, errkind.NotFound) {
			return err
		}
		if mayAskAgain(prev, a, jt.ID) {
			// The agent enrolled with this token may be asking again
			// because its answer was lost (a cut connection, a controller
			// too busy to send it in time). If the CSR is for the key it
			// enrolled (the signature proves the caller holds it), it gets
			// a certificate under the same enrollment and the token's use
			// is not counted twice; otherwise the certificate just signed
			// is dropped, never sent, and the name is enrolled already.
			if cert, err = s.cfg.Signer.SignAgent(csr, a, prev.ID, s.cfg.AgentCertTTL); err != nil {
				return err
			}
			if keyHash(cert) == prev.KeyHash {
				prev.Certs = append(prev.Certs, issued(cert))
				again = true
				return tx.PutEnrollment(prev)
			}
			cert = nil
		}
		if jt.Used >= jt.Uses {
			return fmt.Errorf("the join token %s was used already (%d of %d uses); create a new one with `cutoverctl agent token create --environment %s`: %w",
				jt.ID, jt.Used, jt.Uses, jt.Environment, errkind.Unauthenticated)
		}
		if prev != nil && prev.RevokeTime.IsZero() {
			return fmt.Errorf("agent %s is enrolled already (in %s, since %s); a name can be enrolled again only after `cutoverctl agent revoke %s`; nothing was changed: %w",
				a.Name, prev.Environment, prev.EnrollTime.UTC().Format(time.RFC3339), a.Name, errkind.FailedPrecondition)
		}
		enrollment := token.New().ID
		if cert, err = s.cfg.Signer.SignAgent(csr, a, enrollment, s.cfg.AgentCertTTL); err != nil {
			return err
		}
		jt.Used++
		if err := tx.PutJoinToken(jt); err != nil {
			return err
		}
		return tx.PutEnrollment(&model.Enrollment{ID: enrollment, Name: a.Name, Environment: a.Environment, EnrollTime: now,
			JoinTokenID: jt.ID, Certs: []model.IssuedCert{issued(cert)}, KeyHash: keyHash(cert)})
	})
	if err != nil {
		return nil, err
	}
	if again {
		s.cfg.Log.Info("agent enrolled again with the same token and key (its first answer was lost)", "agent", a.Name, "environment", a.Environment, "not_after", cert.NotAfter)
	} else {
		s.cfg.Log.Info("agent enrolled", "agent", a.Name, "environment", a.Environment, "not_after", cert.NotAfter)
	}
	return cert, nil
}

// mayAskAgain says whether prev is a's current enrollment, made with
// join token tokenID and a recorded key.
func mayAskAgain(prev *model.Enrollment, a identity.Agent, tokenID string) bool {
	return prev != nil && prev.RevokeTime.IsZero() && prev.Environment == a.Environment &&
		prev.JoinTokenID == tokenID && prev.KeyHash != ""
}

// keyHash is the hex SHA-256 of c's DER SubjectPublicKeyInfo.
func keyHash(c *x509.Certificate) string {
	sum := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	return hex.EncodeToString(sum[:])
}

func issued(c *x509.Certificate) model.IssuedCert {
	return model.IssuedCert{Serial: c.SerialNumber.Text(16), NotAfter: c.NotAfter}
}

// Renew issues a new certificate to the agent a, which proved who it is
// with its current certificate, for the CSR. Certificates issued before
// stay valid until they expire (rotation by overlap).
func (s *Service) Renew(ctx context.Context, a identity.Agent, csr []byte) (*x509.Certificate, error) {
	var cert *x509.Certificate
	err := s.cfg.Store.Update(func(tx model.Tx) error {
		e, err := s.enrollment(tx, a)
		if err != nil {
			return err
		}
		if cert, err = s.cfg.Signer.SignAgent(csr, a, e.ID, s.cfg.AgentCertTTL); err != nil {
			return err
		}
		now := s.cfg.Clock()
		e.Certs = slices.DeleteFunc(e.Certs, func(c model.IssuedCert) bool { return !now.Before(c.NotAfter) })
		e.Certs = append(e.Certs, issued(cert))
		return tx.PutEnrollment(e)
	})
	if err != nil {
		return nil, err
	}
	s.cfg.Log.Info("agent certificate renewed", "agent", a.Name, "environment", a.Environment, "not_after", cert.NotAfter)
	return cert, nil
}

// enrollment returns a's enrollment if it is current (not revoked, same
// environment). PermissionDenied otherwise.
func (s *Service) enrollment(tx model.Tx, a identity.Agent) (*model.Enrollment, error) {
	e, err := tx.Enrollment(a.Name)
	if errors.Is(err, errkind.NotFound) {
		return nil, fmt.Errorf("agent %s is not enrolled: %w", a, errkind.PermissionDenied)
	}
	if err != nil {
		return nil, err
	}
	if !e.RevokeTime.IsZero() {
		return nil, fmt.Errorf("agent %s's certificate was revoked at %s: enroll it again with a new join token: %w",
			a, e.RevokeTime.UTC().Format(time.RFC3339), errkind.PermissionDenied)
	}
	if e.Environment != a.Environment {
		return nil, fmt.Errorf("agent %s is enrolled in %s, not %s: %w", a.Name, e.Environment, a.Environment, errkind.PermissionDenied)
	}
	return e, nil
}

// AuthenticateAgent returns the subject of an agent certificate that the
// TLS layer verified against the CA when the connection was made: its
// enrollment must be current (not revoked) and the certificate one issued
// under it. A connection made with a certificate that has expired since
// stays honoured, as TLS itself does; revocation ends it. PermissionDenied
// otherwise (a revoked agent, a certificate of an earlier enrollment).
func (s *Service) AuthenticateAgent(a identity.Agent, cert *x509.Certificate) (Subject, error) {
	err := s.cfg.Store.View(func(tx model.Tx) error {
		e, err := s.enrollment(tx, a)
		if err != nil {
			return err
		}
		if cert.Subject.SerialNumber != e.ID {
			return fmt.Errorf("agent %s's certificate (serial %s) was issued to an earlier enrollment of that name: %w", a, cert.SerialNumber.Text(16), errkind.PermissionDenied)
		}
		return nil
	})
	if err != nil {
		return Subject{}, err
	}
	return AgentSubject(a), nil
}

// RevokeAgent revokes the agent name's certificates: once durable, its
// connections are closed (OnRevoke) and its certificates refused; the name
// may be enrolled again. NotFound if never enrolled; FailedPrecondition if
// revoked already; InvalidArgument if env is set and is not the agent's.
func (s *Service) RevokeAgent(ctx context.Context, env, name string) (*model.Enrollment, error) {
	var e *model.Enrollment
	err := s.cfg.Store.Update(func(tx model.Tx) error {
		var err error
		if e, err = tx.Enrollment(name); err != nil {
			return err
		}
		if env != "" && e.Environment != env {
			return fmt.Errorf("agent %s is enrolled in %s, not %s; nothing was changed: %w", name, e.Environment, env, errkind.InvalidArgument)
		}
		if !e.RevokeTime.IsZero() {
			return fmt.Errorf("agent %s was revoked already at %s: %w", name, e.RevokeTime.UTC().Format(time.RFC3339), errkind.FailedPrecondition)
		}
		e.RevokeTime = s.cfg.Clock()
		return tx.PutEnrollment(e)
	})
	if err != nil {
		return nil, err
	}
	a := identity.Agent{Environment: e.Environment, Name: e.Name}
	reason := fmt.Sprintf("agent %s's certificate was revoked by %s", a, Actor(ctx))
	s.cfg.Log.Warn("agent revoked", "agent", a.Name, "environment", a.Environment, "by", Actor(ctx))
	s.mu.Lock()
	hooks := slices.Clone(s.onRevoke)
	s.mu.Unlock()
	for _, fn := range hooks {
		fn(a, reason)
	}
	return e, nil
}

// Enrollments returns every enrollment by agent name.
func (s *Service) Enrollments(ctx context.Context) (map[string]*model.Enrollment, error) {
	out := map[string]*model.Enrollment{}
	err := s.cfg.Store.View(func(tx model.Tx) error {
		all, err := tx.Enrollments()
		for _, e := range all {
			out[e.Name] = e
		}
		return err
	})
	return out, err
}

// CAHash is the hex SHA-256 of the CA's public key, which join tokens carry.
func (s *Service) CAHash() string { return s.cfg.Signer.CAHash() }

// CACertDER is the CA certificate, which enrolled agents keep.
func (s *Service) CACertDER() []byte { return s.cfg.Signer.CACertDER() }
