package adminapi

import (
	"context"
	"fmt"

	"github.com/cutover-dev/cutover/pkg/errkind"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// listAuditEvents is replaced when the audit log lands.
func (s *Server) listAuditEvents(ctx context.Context, req *cutoverv1.ListAuditEventsRequest) (*cutoverv1.ListAuditEventsResponse, error) {
	return nil, fmt.Errorf("the audit log is not served yet: %w", errkind.FailedPrecondition)
}
