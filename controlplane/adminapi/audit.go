package adminapi

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cutover-dev/cutover/controlplane/audit"
	"github.com/cutover-dev/cutover/pkg/auditlog"
	"github.com/cutover-dev/cutover/pkg/errkind"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// ListAuditEvents returns the entries the request's filters select,
// oldest first, with their hash chain. Who may read which entries is the
// authorization interceptor's decision, not this handler's.
func (s *Server) ListAuditEvents(ctx context.Context, req *cutoverv1.ListAuditEventsRequest) (*cutoverv1.ListAuditEventsResponse, error) {
	if s.audit == nil {
		return nil, fmt.Errorf("this controller keeps no audit log (adminapi.Config.Audit is not set): %w", errkind.FailedPrecondition)
	}
	f, err := auditFilterFromProto(req)
	if err != nil {
		return nil, err
	}
	es, err := s.audit.List(ctx, f)
	if err != nil {
		return nil, err
	}
	return auditEventsToProto(es), nil
}

// auditFilterFromProto converts a ListAuditEvents request into a filter;
// InvalidArgument for a timestamp out of range or a start after the end.
func auditFilterFromProto(req *cutoverv1.ListAuditEventsRequest) (audit.Filter, error) {
	f := audit.Filter{Environment: req.GetEnvironment(), Deployment: req.GetDeployment(), Subject: req.GetSubject()}
	for _, t := range []struct {
		field string
		ts    *timestamppb.Timestamp
		to    *time.Time
	}{{"start_time", req.GetStartTime(), &f.Start}, {"end_time", req.GetEndTime(), &f.End}} {
		if t.ts == nil {
			continue
		}
		if err := t.ts.CheckValid(); err != nil {
			return audit.Filter{}, fmt.Errorf("%s: %v: %w", t.field, err, errkind.InvalidArgument)
		}
		*t.to = t.ts.AsTime()
	}
	if !f.Start.IsZero() && !f.End.IsZero() && f.Start.After(f.End) {
		return audit.Filter{}, fmt.Errorf("start_time %s is after end_time %s; swap them: %w",
			f.Start.Format(time.RFC3339Nano), f.End.Format(time.RFC3339Nano), errkind.InvalidArgument)
	}
	return f, nil
}

// auditEventToProto converts an entry. Its time is always set (even when
// zero), so that a client recomputes the same hash.
func auditEventToProto(e auditlog.Entry) *cutoverv1.AuditEvent {
	return &cutoverv1.AuditEvent{
		Seq: e.Seq, Time: timestamppb.New(e.Time), Subject: e.Subject,
		Roles: append([]string(nil), e.Roles...), Method: e.Method,
		Environment: e.Environment, Deployment: e.Deployment, Summary: e.Summary,
		Code: e.Code, Reason: e.Reason, PrevHash: e.PrevHash, Hash: e.Hash,
	}
}

// auditEventsToProto converts entries, keeping their order.
func auditEventsToProto(es []auditlog.Entry) *cutoverv1.ListAuditEventsResponse {
	out := &cutoverv1.ListAuditEventsResponse{Events: make([]*cutoverv1.AuditEvent, 0, len(es))}
	for _, e := range es {
		out.Events = append(out.Events, auditEventToProto(e))
	}
	return out
}
