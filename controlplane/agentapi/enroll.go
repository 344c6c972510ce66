package agentapi

import (
	"context"
	"fmt"

	"github.com/cutover-dev/cutover/pkg/errkind"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

var errNotYet = fmt.Errorf("not served yet: %w", errkind.FailedPrecondition)

// Enroll exchanges a join token and a CSR for a certificate.
func (s *Server) Enroll(ctx context.Context, req *cutoverv1.EnrollRequest) (*cutoverv1.EnrollResponse, error) {
	return nil, errNotYet
}

// RenewCertificate issues a new certificate for the calling agent.
func (s *Server) RenewCertificate(ctx context.Context, req *cutoverv1.RenewCertificateRequest) (*cutoverv1.RenewCertificateResponse, error) {
	return nil, errNotYet
}
