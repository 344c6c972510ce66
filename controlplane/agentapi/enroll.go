package agentapi

import (
	"context"
	"fmt"

	"github.com/cutover-dev/cutover/controlplane/auth"
	"github.com/cutover-dev/cutover/pkg/errkind"
	"github.com/cutover-dev/cutover/pkg/identity"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// Enroll exchanges a join token and a CSR for the agent's first
// certificate (auth.Service.Enroll checks the token).
func (s *Server) Enroll(ctx context.Context, req *cutoverv1.EnrollRequest) (*cutoverv1.EnrollResponse, error) {
	a := identity.Agent{Environment: req.GetEnvironment(), Name: req.GetName()}
	cert, err := s.auth.Enroll(ctx, req.GetJoinToken(), a, req.GetCsr())
	if err != nil {
		return nil, err
	}
	return &cutoverv1.EnrollResponse{Certificate: cert.Raw, CaCertificate: s.auth.CACertDER()}, nil
}

// RenewCertificate issues a new certificate to the calling agent, whose
// identity controlplane/guard took from its current certificate.
func (s *Server) RenewCertificate(ctx context.Context, req *cutoverv1.RenewCertificateRequest) (*cutoverv1.RenewCertificateResponse, error) {
	sub, ok := auth.FromContext(ctx)
	if !ok || sub.Agent == nil {
		return nil, fmt.Errorf("only an agent renews its certificate: %w", errkind.PermissionDenied)
	}
	cert, err := s.auth.Renew(ctx, *sub.Agent, req.GetCsr())
	if err != nil {
		return nil, err
	}
	return &cutoverv1.RenewCertificateResponse{Certificate: cert.Raw, CaCertificate: s.auth.CACertDER()}, nil
}
