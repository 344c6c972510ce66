package adminapi

import (
	"context"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cutover-dev/cutover/controlplane/auth"
	"github.com/cutover-dev/cutover/controlplane/fleet"
	"github.com/cutover-dev/cutover/controlplane/model"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// CreateToken issues an operator token.
func (s *Server) CreateToken(ctx context.Context, req *cutoverv1.CreateTokenRequest) (*cutoverv1.CreateTokenResponse, error) {
	secret, rec, err := s.auth.CreateToken(ctx, req.GetSubject(), roleFromProto(req.GetRole()), req.GetEnvironment(), req.GetTtl().AsDuration())
	if err != nil {
		return nil, err
	}
	return &cutoverv1.CreateTokenResponse{Token: secret, Info: tokenToProto(rec)}, nil
}

// ListTokens lists operator tokens, without their secrets.
func (s *Server) ListTokens(ctx context.Context, req *cutoverv1.ListTokensRequest) (*cutoverv1.ListTokensResponse, error) {
	recs, err := s.auth.Tokens(ctx)
	if err != nil {
		return nil, err
	}
	out := &cutoverv1.ListTokensResponse{}
	for _, r := range recs {
		out.Tokens = append(out.Tokens, tokenToProto(r))
	}
	return out, nil
}

// RevokeToken revokes an operator token.
func (s *Server) RevokeToken(ctx context.Context, req *cutoverv1.RevokeTokenRequest) (*cutoverv1.TokenInfo, error) {
	if err := required("id", req.GetId()); err != nil {
		return nil, err
	}
	rec, err := s.auth.RevokeToken(ctx, req.GetId())
	if err != nil {
		return nil, err
	}
	return tokenToProto(rec), nil
}

// CreateJoinToken issues an agent join token.
func (s *Server) CreateJoinToken(ctx context.Context, req *cutoverv1.CreateJoinTokenRequest) (*cutoverv1.CreateJoinTokenResponse, error) {
	secret, rec, err := s.auth.CreateJoinToken(ctx, req.GetEnvironment(), req.GetName(), req.GetTtl().AsDuration(), int(req.GetUses()))
	if err != nil {
		return nil, err
	}
	return &cutoverv1.CreateJoinTokenResponse{Token: secret, Id: rec.ID, ExpireTime: timestamppb.New(rec.ExpireTime),
		CaCertHash: "sha256:" + s.auth.CAHash()}, nil
}

// RevokeAgent revokes an agent's certificate.
func (s *Server) RevokeAgent(ctx context.Context, req *cutoverv1.RevokeAgentRequest) (*cutoverv1.Agent, error) {
	if err := required("name", req.GetName()); err != nil {
		return nil, err
	}
	e, err := s.auth.RevokeAgent(ctx, req.GetEnvironment(), req.GetName())
	if err != nil {
		return nil, err
	}
	p := &cutoverv1.Agent{Name: e.Name, Environment: e.Environment}
	enrollmentToProto(p, e)
	return p, nil
}

// RemoveAgent forgets an agent that is not connected.
func (s *Server) RemoveAgent(ctx context.Context, req *cutoverv1.RemoveAgentRequest) (*cutoverv1.Agent, error) {
	if err := required("name", req.GetName()); err != nil {
		return nil, err
	}
	a, err := s.fleet.Remove(req.GetEnvironment(), req.GetName())
	if err != nil {
		return nil, err
	}
	return agentToProto(fleet.AgentView{Agent: *a}), nil
}

// roles maps the API's roles to auth's, both ways.
var roles = map[cutoverv1.Role]auth.Role{
	cutoverv1.Role_ROLE_VIEWER:   auth.Viewer,
	cutoverv1.Role_ROLE_DEPLOYER: auth.Deployer,
	cutoverv1.Role_ROLE_APPROVER: auth.Approver,
	cutoverv1.Role_ROLE_ADMIN:    auth.Admin,
}

// roleFromProto returns auth's role, 0 for an unspecified or unknown one
// (which auth refuses).
func roleFromProto(r cutoverv1.Role) auth.Role { return roles[r] }

// roleToProto returns the API's role of a stored role name, unspecified
// for an unknown one.
func roleToProto(name string) cutoverv1.Role {
	if r, err := auth.ParseRole(name); err == nil {
		for p, a := range roles {
			if a == r {
				return p
			}
		}
	}
	return cutoverv1.Role_ROLE_UNSPECIFIED
}

func tokenToProto(t *model.OperatorToken) *cutoverv1.TokenInfo {
	return &cutoverv1.TokenInfo{Id: t.ID, Subject: t.Subject, Role: roleToProto(t.Role), Environment: t.Environment,
		CreateTime: ts(t.CreateTime), ExpireTime: ts(t.ExpireTime), RevokeTime: ts(t.RevokeTime), CreatedBy: t.CreatedBy}
}
