// Package auth decides who calls and what they may do. It owns the roles
// (after OutSystems LifeTime's permission levels), the policy that answers
// "may this subject do this to this environment", operator API tokens,
// agent join tokens, enrollment, certificate renewal and revocation. It
// never imports grpc: controlplane/guard authenticates each call with it,
// asks Allowed, and audits the answer.
package auth

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/cutover-dev/cutover/pkg/errkind"
	"github.com/cutover-dev/cutover/pkg/identity"
)

// Role is what an operator token allows.
type Role int

// The roles. Every role may read what it may act on.
const (
	// Viewer reads: list, get, watch, plans, audit.
	Viewer Role = iota + 1
	// Deployer creates, prepares, continues, aborts, extends and rolls
	// back deployments, and schedules them at a window.
	Deployer
	// Approver approves deployments (never one the same subject created or
	// prepared: controlplane/deployment enforces that).
	Approver
	// Admin manages environments, applications, agents and tokens, and may
	// do everything the others may.
	Admin
)

var roleNames = []string{Viewer: "viewer", Deployer: "deployer", Approver: "approver", Admin: "admin"}

// String returns the role's name.
func (r Role) String() string {
	if r < Viewer || r > Admin {
		return fmt.Sprintf("role(%d)", int(r))
	}
	return roleNames[r]
}

// ParseRole parses a role name. InvalidArgument for an unknown one.
func ParseRole(s string) (Role, error) {
	if i := slices.Index(roleNames, s); i > 0 {
		return Role(i), nil
	}
	return 0, fmt.Errorf("role %q is unknown; want viewer, deployer, approver or admin: %w", s, errkind.InvalidArgument)
}

// Action is what a call does, as the policy sees it.
type Action int

// The actions.
const (
	// Read lists, gets, watches.
	Read Action = iota + 1
	// Deploy changes a deployment (create, prepare, continue, abort,
	// extend, roll back, schedule).
	Deploy
	// Approve approves a deployment.
	Approve
	// Administer manages environments, applications, agents, tokens.
	Administer
	// Session is what an agent does: its session, release data, its own
	// certificate's renewal.
	Session
	// Mirror is what another controller of the same CA does: fetch the
	// chunks of recorded releases (controlplane/mirror).
	Mirror
)

var actionNames = []string{Read: "read", Deploy: "deploy", Approve: "approve", Administer: "administer", Session: "agent session", Mirror: "mirror release chunks"}

// String returns the action's name.
func (a Action) String() string {
	if a < Read || a > Mirror {
		return fmt.Sprintf("action(%d)", int(a))
	}
	return actionNames[a]
}

// may lists what each role may do.
var may = map[Role][]Action{
	Viewer:   {Read},
	Deployer: {Read, Deploy},
	Approver: {Read, Approve},
	Admin:    {Read, Deploy, Approve, Administer},
}

// Target is what a call acts on.
type Target struct {
	// Environment is the environment concerned; empty with Global false
	// means every environment (a list across all of them).
	Environment string
	// Global: the call concerns no environment (applications, tokens, the
	// list of environment names).
	Global bool
}

// Subject is who calls, as proven by a token or a certificate, never as
// the caller says.
type Subject struct {
	// Name is recorded as the actor: a token's subject, or
	// "agent:<environment>/<name>".
	Name string
	// Role and Environment are an operator token's grant (Environment
	// empty: every environment).
	Role        Role
	Environment string
	// TokenID is the operator token's public id.
	TokenID string
	// Agent is set for an agent (from its certificate).
	Agent *identity.Agent
	// Peer is set for another controller of this CA (its certificate
	// names cutover://controller): it may only mirror.
	Peer bool
}

// PeerSubject is the subject of another controller of this CA.
var PeerSubject = Subject{Name: "controller-peer", Peer: true}

// AgentSubject returns the subject of an agent.
func AgentSubject(a identity.Agent) Subject {
	return Subject{Name: "agent:" + a.String(), Agent: &a}
}

// Controller is the subject of what the controller does by itself
// (expiry, scheduled stage 2, automatic rollback).
var Controller = Subject{Name: "controller"}

// Roles returns the grants the subject acts with, for the audit log
// ("deployer@production", "admin@*", "agent@production").
func (s Subject) Roles() []string {
	switch {
	case s.Agent != nil:
		return []string{"agent@" + s.Agent.Environment}
	case s.Role == 0:
		return nil
	case s.Environment == "":
		return []string{s.Role.String() + "@*"}
	default:
		return []string{s.Role.String() + "@" + s.Environment}
	}
}

// Allowed says whether s may do a to t: nil, or an error of kind
// PermissionDenied that says what the subject lacks. It is the one place
// where roles are tested.
func Allowed(s Subject, a Action, t Target) error {
	if s.Peer {
		if a == Mirror {
			return nil
		}
		return fmt.Errorf("another controller may only mirror release chunks, not %s: %w", a, errkind.PermissionDenied)
	}
	if a == Mirror {
		return fmt.Errorf("%s is not a controller of this CA: only controllers mirror release chunks: %w", s.Name, errkind.PermissionDenied)
	}
	if s.Agent != nil {
		if a == Session && (t.Environment == s.Agent.Environment) {
			return nil
		}
		if a == Session {
			return fmt.Errorf("agent %s may act only in environment %s, not %q: %w", s.Agent, s.Agent.Environment, t.Environment, errkind.PermissionDenied)
		}
		return fmt.Errorf("agent %s may not %s: agents only hold sessions and fetch their releases: %w", s.Agent, a, errkind.PermissionDenied)
	}
	if a == Session {
		return fmt.Errorf("%s is not an agent: this method needs an agent certificate: %w", s.Name, errkind.PermissionDenied)
	}
	if !slices.Contains(may[s.Role], a) {
		return fmt.Errorf("%s has role %s, which may not %s (%s); nothing was changed: %w", s.Name, s.Role, a, needs(a), errkind.PermissionDenied)
	}
	if s.Environment == "" {
		return nil
	}
	switch {
	case t.Global && a == Read:
		return nil
	case t.Global:
		return fmt.Errorf("%s's role %s is limited to environment %s; this needs a role for every environment; nothing was changed: %w", s.Name, s.Role, s.Environment, errkind.PermissionDenied)
	case t.Environment == "":
		return fmt.Errorf("%s's role is limited to environment %s: name it (for example --environment %s): %w", s.Name, s.Environment, s.Environment, errkind.PermissionDenied)
	case t.Environment != s.Environment:
		return fmt.Errorf("%s's role %s is for environment %s, not %s; nothing was changed: %w", s.Name, s.Role, s.Environment, t.Environment, errkind.PermissionDenied)
	}
	return nil
}

// needs names the roles that may do a.
func needs(a Action) string {
	var rs []string
	for r := Viewer; r <= Admin; r++ {
		if slices.Contains(may[r], a) {
			rs = append(rs, r.String())
		}
	}
	return "that needs " + strings.Join(rs, " or ")
}

type subjectKey struct{}

// WithSubject returns ctx carrying s.
func WithSubject(ctx context.Context, s Subject) context.Context {
	return context.WithValue(ctx, subjectKey{}, s)
}

// FromContext returns the subject ctx carries.
func FromContext(ctx context.Context) (Subject, bool) {
	s, ok := ctx.Value(subjectKey{}).(Subject)
	return s, ok
}

// Actor returns the name of the subject ctx carries, or "controller" for
// work the controller does by itself.
func Actor(ctx context.Context) string {
	if s, ok := FromContext(ctx); ok {
		return s.Name
	}
	return Controller.Name
}
