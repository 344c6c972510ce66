package adminapi

import (
	"context"
	"fmt"

	"github.com/cutover-dev/cutover/pkg/errkind"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

var errNotYet = fmt.Errorf("not served yet: %w", errkind.FailedPrecondition)

// CreateToken issues an operator token.
func (s *Server) CreateToken(ctx context.Context, req *cutoverv1.CreateTokenRequest) (*cutoverv1.CreateTokenResponse, error) {
	return nil, errNotYet
}

// ListTokens lists operator tokens.
func (s *Server) ListTokens(ctx context.Context, req *cutoverv1.ListTokensRequest) (*cutoverv1.ListTokensResponse, error) {
	return nil, errNotYet
}

// RevokeToken revokes an operator token.
func (s *Server) RevokeToken(ctx context.Context, req *cutoverv1.RevokeTokenRequest) (*cutoverv1.TokenInfo, error) {
	return nil, errNotYet
}

// CreateJoinToken issues an agent join token.
func (s *Server) CreateJoinToken(ctx context.Context, req *cutoverv1.CreateJoinTokenRequest) (*cutoverv1.CreateJoinTokenResponse, error) {
	return nil, errNotYet
}

// RevokeAgent revokes an agent's certificate.
func (s *Server) RevokeAgent(ctx context.Context, req *cutoverv1.RevokeAgentRequest) (*cutoverv1.Agent, error) {
	return nil, errNotYet
}

// ListAuditEvents returns audit entries.
func (s *Server) ListAuditEvents(ctx context.Context, req *cutoverv1.ListAuditEventsRequest) (*cutoverv1.ListAuditEventsResponse, error) {
	return nil, errNotYet
}
