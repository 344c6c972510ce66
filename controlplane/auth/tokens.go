package auth

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/pkg/appspec"
	"github.com/cutover-dev/cutover/pkg/atomicfile"
	"github.com/cutover-dev/cutover/pkg/errkind"
	"github.com/cutover-dev/cutover/pkg/identity"
	"github.com/cutover-dev/cutover/pkg/token"
)

// Signer issues agent certificates (controlplane/pki).
type Signer interface {
	// SignAgent issues a certificate for the CSR's key with the identity a,
	// naming the enrollment it belongs to (Subject.SerialNumber).
	// InvalidArgument for a bad CSR.
	SignAgent(csr []byte, a identity.Agent, enrollment string, ttl time.Duration) (*x509.Certificate, error)
	// CAHash is the hex SHA-256 of the CA's public key.
	CAHash() string
	// CACertDER is the CA certificate.
	CACertDER() []byte
}

// Defaults.
const (
	DefaultAgentCertTTL = 24 * time.Hour
	DefaultJoinTokenTTL = time.Hour
	// BootstrapSubject is the subject of the first admin token.
	BootstrapSubject = "bootstrap-admin"
)

// Config holds what the service needs.
type Config struct {
	Store  model.Store
	Signer Signer
	// AgentCertTTL is the lifetime of agents' certificates; default 24 h.
	AgentCertTTL time.Duration
	Clock        func() time.Time
	Log          *slog.Logger
}

// Service authenticates subjects and manages tokens and enrollments.
type Service struct {
	cfg Config

	mu       sync.Mutex
	onRevoke []func(identity.Agent, string)
}

// New returns a service.
func New(cfg Config) *Service {
	if cfg.AgentCertTTL <= 0 {
		cfg.AgentCertTTL = DefaultAgentCertTTL
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Service{cfg: cfg}
}

// OnRevoke registers fn, called with the agent and a readable reason
// after an agent's revocation is durable.
func (s *Service) OnRevoke(fn func(identity.Agent, string)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onRevoke = append(s.onRevoke, fn)
}

// Bootstrap creates the first admin token when the controller has no
// operator token at all, and writes it alone to path (0600). It does
// nothing once any token exists.
func (s *Service) Bootstrap(path string) (created bool, err error) {
	tok := token.New()
	err = s.cfg.Store.Update(func(tx model.Tx) error {
		all, err := tx.OperatorTokens()
		if err != nil || len(all) > 0 {
			return err
		}
		if err := atomicfile.Write(path, []byte(tok.Operator()+"\n"), 0o600); err != nil {
			return err
		}
		created = true
		return tx.PutOperatorToken(&model.OperatorToken{ID: tok.ID, Hash: tok.Hash(), Subject: BootstrapSubject,
			Role: Admin.String(), CreateTime: s.cfg.Clock(), CreatedBy: Controller.Name})
	})
	return created, err
}

// CreateToken issues an operator token for subject with role, limited to
// env unless it is empty, expiring after ttl unless it is 0. It returns
// the secret (shown once) and the record. InvalidArgument for a bad
// subject, role or environment name.
func (s *Service) CreateToken(ctx context.Context, subject string, role Role, env string, ttl time.Duration) (string, *model.OperatorToken, error) {
	if err := validSubject(subject); err != nil {
		return "", nil, err
	}
	if role < Viewer || role > Admin {
		return "", nil, fmt.Errorf("role is required (viewer, deployer, approver or admin): %w", errkind.InvalidArgument)
	}
	if env != "" {
		if err := appspec.ValidName(env); err != nil {
			return "", nil, fmt.Errorf("environment: %w", err)
		}
	}
	if ttl < 0 {
		return "", nil, fmt.Errorf("ttl %s is negative: %w", ttl, errkind.InvalidArgument)
	}
	tok := token.New()
	now := s.cfg.Clock()
	rec := &model.OperatorToken{ID: tok.ID, Hash: tok.Hash(), Subject: subject, Role: role.String(),
		Environment: env, CreateTime: now, CreatedBy: Actor(ctx)}
	if ttl > 0 {
		rec.ExpireTime = now.Add(ttl)
	}
	if err := s.cfg.Store.Update(func(tx model.Tx) error { return tx.PutOperatorToken(rec) }); err != nil {
		return "", nil, err
	}
	return tok.Operator(), rec, nil
}

func validSubject(s string) error {
	if s == "" || len(s) > 128 {
		return fmt.Errorf("subject is required (1 to 128 characters): %w", errkind.InvalidArgument)
	}
	for _, c := range s {
		if c <= ' ' || c == 0x7f || c == ':' {
			return fmt.Errorf("subject %q: no spaces, control characters or ':' (kept for agents): %w", s, errkind.InvalidArgument)
		}
	}
	if s == Controller.Name {
		return fmt.Errorf("subject %q is the controller's own: %w", s, errkind.InvalidArgument)
	}
	return nil
}

// Tokens returns every operator token, oldest first.
func (s *Service) Tokens(ctx context.Context) ([]*model.OperatorToken, error) {
	var out []*model.OperatorToken
	err := s.cfg.Store.View(func(tx model.Tx) error {
		var err error
		out, err = tx.OperatorTokens()
		return err
	})
	slices.SortStableFunc(out, func(a, b *model.OperatorToken) int { return a.CreateTime.Compare(b.CreateTime) })
	return out, err
}

// RevokeToken revokes an operator token: calls with it fail from now on.
// NotFound if unknown; FailedPrecondition if revoked already.
func (s *Service) RevokeToken(ctx context.Context, id string) (*model.OperatorToken, error) {
	var rec *model.OperatorToken
	err := s.cfg.Store.Update(func(tx model.Tx) error {
		var err error
		if rec, err = tx.OperatorToken(id); err != nil {
			return err
		}
		if !rec.RevokeTime.IsZero() {
			return fmt.Errorf("token %s was revoked already at %s: %w", id, rec.RevokeTime.UTC().Format(time.RFC3339), errkind.FailedPrecondition)
		}
		rec.RevokeTime = s.cfg.Clock()
		return tx.PutOperatorToken(rec)
	})
	return rec, err
}

// errBadToken is what every failed token check says, so that a caller
// cannot tell an unknown id from a wrong secret.
var errBadToken = errors.New("the token is not valid (unknown, wrong, revoked or expired); get one from an admin (`cutoverctl token create`)")

// Authenticate returns the subject of a bearer token. Unauthenticated for
// a malformed, unknown, wrong, revoked or expired token.
func (s *Service) Authenticate(bearer string) (Subject, error) {
	tok, err := token.ParseOperator(bearer)
	if err != nil {
		return Subject{}, fmt.Errorf("%w: %w", err, errkind.Unauthenticated)
	}
	var rec *model.OperatorToken
	err = s.cfg.Store.View(func(tx model.Tx) error {
		var err error
		rec, err = tx.OperatorToken(tok.ID)
		return err
	})
	if errors.Is(err, errkind.NotFound) || (err == nil && !tok.Matches(rec.Hash)) {
		return Subject{}, fmt.Errorf("%w: %w", errBadToken, errkind.Unauthenticated)
	}
	if err != nil {
		return Subject{}, err
	}
	now := s.cfg.Clock()
	if !rec.RevokeTime.IsZero() || (!rec.ExpireTime.IsZero() && !now.Before(rec.ExpireTime)) {
		return Subject{}, fmt.Errorf("%w: %w", errBadToken, errkind.Unauthenticated)
	}
	role, err := ParseRole(rec.Role)
	if err != nil {
		return Subject{}, fmt.Errorf("token %s: stored %w", rec.ID, err)
	}
	return Subject{Name: rec.Subject, Role: role, Environment: rec.Environment, TokenID: rec.ID}, nil
}
