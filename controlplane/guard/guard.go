// Package guard is the gRPC interceptor that stands before every method:
// it authenticates the caller (an operator's bearer token, or an agent's
// client certificate verified by TLS), asks auth.Allowed whether that
// subject may do what the method does to the environment it concerns,
// writes the audit entry of every mutating or refused call before the
// answer goes out, and hands the handler a context that carries the
// subject. Handlers never test roles. Health and reflection are open.
package guard

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/cutover-dev/cutover/controlplane/auth"
	"github.com/cutover-dev/cutover/pkg/errkind"
	"github.com/cutover-dev/cutover/pkg/identity"
	"github.com/cutover-dev/cutover/pkg/manifest"
	"github.com/cutover-dev/cutover/pkg/rpcerr"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// Resolver answers what the guard must know about the state to decide.
type Resolver interface {
	// Environment returns the environment of a deployment. NotFound if
	// unknown.
	Environment(deploymentID string) (string, error)
	// ReleaseChunks returns the chunks of a release that a deployment of
	// env brings. PermissionDenied if no deployment of env has it.
	ReleaseChunks(env, releaseID string) (map[manifest.ChunkID]struct{}, error)
}

// Record is one audit entry, as the guard sees it.
type Record struct {
	Subject     auth.Subject
	Method      string
	Environment string
	Deployment  string
	Summary     string
	Code        codes.Code
	Reason      string
}

// Config holds what the guard needs.
type Config struct {
	Auth     *auth.Service
	Resolver Resolver
	// Audit appends an entry durably; the call is answered after it returns.
	Audit func(ctx context.Context, r Record) error
	Log   *slog.Logger
}

// Guard is the interceptor.
type Guard struct {
	cfg Config

	mu      sync.Mutex
	streams map[string]map[*int]context.CancelFunc // agent URI → its open streams
}

// New returns a guard.
func New(cfg Config) *Guard {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Guard{cfg: cfg, streams: map[string]map[*int]context.CancelFunc{}}
}

// openService says whether a method needs no credential at all: the
// standard health service and server reflection, so that `grpcurl list`
// and `describe` work before login.
func openService(method string) bool {
	return strings.HasPrefix(method, "/grpc.health.v1.Health/") ||
		strings.HasPrefix(method, "/grpc.reflection.v1.ServerReflection/") ||
		strings.HasPrefix(method, "/grpc.reflection.v1alpha.ServerReflection/")
}

// anonymous is the subject of a call that did not authenticate.
var anonymous = auth.Subject{Name: "anonymous"}

// authenticate finds who calls: an agent by its verified client
// certificate, an operator by its bearer token. Unauthenticated when
// neither is there or valid; PermissionDenied for a certificate the
// controller no longer honours (revoked).
func (g *Guard) authenticate(ctx context.Context) (auth.Subject, error) {
	if p, ok := peer.FromContext(ctx); ok {
		if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.VerifiedChains) > 0 {
			leaf := ti.State.VerifiedChains[0][0]
			return g.authenticateCert(leaf)
		}
	}
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get("authorization")
	if len(vals) == 0 {
		return anonymous, fmt.Errorf("no credentials: send `authorization: Bearer <token>` (cutoverctl: --token-file, CUTOVER_TOKEN or `cutoverctl login`): %w", errkind.Unauthenticated)
	}
	bearer, ok := strings.CutPrefix(vals[0], "Bearer ")
	if !ok {
		bearer, ok = strings.CutPrefix(vals[0], "bearer ")
	}
	if !ok {
		return anonymous, fmt.Errorf("the authorization header must be `Bearer <token>`: %w", errkind.Unauthenticated)
	}
	return g.cfg.Auth.Authenticate(strings.TrimSpace(bearer))
}

func (g *Guard) authenticateCert(leaf *x509.Certificate) (auth.Subject, error) {
	if identity.IsController(leaf) { // verified against the CA by the handshake
		return auth.PeerSubject, nil
	}
	a, err := identity.AgentFromCert(leaf)
	if err != nil {
		return anonymous, fmt.Errorf("the client certificate names no cutover agent: %w", errkind.Unauthenticated)
	}
	s, err := g.cfg.Auth.AuthenticateAgent(a, leaf)
	if err != nil {
		return auth.AgentSubject(a), err
	}
	return s, nil
}

// authorize resolves the target of req and asks the policy. It returns
// the environment and deployment concerned (for the audit entry).
func (g *Guard) authorize(s auth.Subject, method string, r rule, req proto.Message) (env, dep string, err error) {
	var t target
	if r.target != nil {
		t = r.target(req)
	}
	env, dep = t.env, t.deployment
	if s.Peer {
		return env, dep, auth.Allowed(s, r.peer, auth.Target{Environment: env, Global: t.global})
	}
	if dep != "" {
		if env, err = g.cfg.Resolver.Environment(dep); err != nil {
			return "", dep, err
		}
	}
	if r.action == auth.Session && s.Agent != nil {
		env = s.Agent.Environment
		if err := g.agentRequest(s, method, req); err != nil {
			return env, dep, err
		}
	}
	return env, dep, auth.Allowed(s, r.action, auth.Target{Environment: env, Global: t.global})
}

// agentRequest checks what an agent's request names: its hello must say
// what its certificate says, and it may fetch only releases that a
// deployment of its environment brings, and only their chunks.
func (g *Guard) agentRequest(s auth.Subject, method string, req proto.Message) error {
	a := s.Agent
	switch r := req.(type) {
	case *cutoverv1.ConnectRequest:
		h := r.GetHello()
		if h == nil {
			return fmt.Errorf("the first message of a session must be a hello: %w", errkind.InvalidArgument)
		}
		if h.GetEnvironment() != a.Environment || h.GetName() != a.Name {
			return fmt.Errorf("hello says %s/%s but the certificate is %s's: an agent is who its certificate says: %w",
				h.GetEnvironment(), h.GetName(), a, errkind.PermissionDenied)
		}
	case *cutoverv1.GetManifestRequest:
		_, err := g.cfg.Resolver.ReleaseChunks(a.Environment, r.GetReleaseId())
		return err
	case *cutoverv1.FetchChunksRequest:
		if r.GetReleaseId() == "" {
			return fmt.Errorf("release_id is required: %w", errkind.InvalidArgument)
		}
		chunks, err := g.cfg.Resolver.ReleaseChunks(a.Environment, r.GetReleaseId())
		if err != nil {
			return err
		}
		for _, b := range r.GetIds() {
			var id manifest.ChunkID
			if len(b) != len(id) {
				return fmt.Errorf("chunk id of %d bytes, want %d: %w", len(b), len(id), errkind.InvalidArgument)
			}
			copy(id[:], b)
			if _, ok := chunks[id]; !ok {
				return fmt.Errorf("chunk %s is not part of release %s: %w", id, r.GetReleaseId(), errkind.PermissionDenied)
			}
		}
	}
	return nil
}

// code is the gRPC code an error will be answered with: what the rpcerr
// interceptor makes of it.
func code(err error) codes.Code {
	return status.Code(rpcerr.ToStatus(nil, err))
}

// audit appends the entry of a call. If that fails the caller gets an
// error saying so: an action must not go unrecorded silently.
func (g *Guard) audit(ctx context.Context, s auth.Subject, method, env, dep string, req proto.Message, err error) error {
	rec := Record{Subject: s, Method: method, Environment: env, Deployment: dep,
		Summary: summarize(req), Code: code(err), Reason: reasonOf(req)}
	if rec.Code != codes.OK && rec.Reason == "" && err != nil {
		rec.Reason = err.Error()
	}
	if aerr := g.cfg.Audit(ctx, rec); aerr != nil {
		g.cfg.Log.Error("audit entry not written", "method", method, "subject", s.Name, "err", aerr)
		if err == nil {
			return fmt.Errorf("%s was done, but its audit entry could not be written; the controller's log has the details: %w", method, errkind.Unavailable)
		}
	}
	return err
}

// refused reports whether err is one of the guard's refusals.
func refused(err error) bool {
	return errors.Is(err, errkind.Unauthenticated) || errors.Is(err, errkind.PermissionDenied)
}
