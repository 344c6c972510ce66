package adminapi

import (
	"errors"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cutover-dev/cutover/controlplane/audit"
	"github.com/cutover-dev/cutover/controlplane/store"
	"github.com/cutover-dev/cutover/pkg/auditlog"
	"github.com/cutover-dev/cutover/pkg/errkind"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

func TestAuditFilterFromProto(t *testing.T) {
	t1 := t0.Add(time.Hour)
	tests := []struct {
		name    string
		in      *cutoverv1.ListAuditEventsRequest
		want    audit.Filter
		invalid bool
	}{
		{"empty", &cutoverv1.ListAuditEventsRequest{}, audit.Filter{}, false},
		{"nil", nil, audit.Filter{}, false},
		{"everything", &cutoverv1.ListAuditEventsRequest{Environment: "production", Deployment: "d-1", Subject: "alice",
			StartTime: timestamppb.New(t0), EndTime: timestamppb.New(t1)},
			audit.Filter{Environment: "production", Deployment: "d-1", Subject: "alice", Start: t0, End: t1}, false},
		{"start only", &cutoverv1.ListAuditEventsRequest{StartTime: timestamppb.New(t0)}, audit.Filter{Start: t0}, false},
		{"start equals end", &cutoverv1.ListAuditEventsRequest{StartTime: timestamppb.New(t0), EndTime: timestamppb.New(t0)},
			audit.Filter{Start: t0, End: t0}, false},
		{"start after end", &cutoverv1.ListAuditEventsRequest{StartTime: timestamppb.New(t1), EndTime: timestamppb.New(t0)}, audit.Filter{}, true},
		{"bad timestamp", &cutoverv1.ListAuditEventsRequest{EndTime: &timestamppb.Timestamp{Nanos: -1}}, audit.Filter{}, true},
	}
	for _, tt := range tests {
		got, err := auditFilterFromProto(tt.in)
		if tt.invalid {
			if !errors.Is(err, errkind.InvalidArgument) {
				t.Errorf("%s: err = %v, want InvalidArgument", tt.name, err)
			}
			continue
		}
		if err != nil || got.Environment != tt.want.Environment || got.Deployment != tt.want.Deployment ||
			got.Subject != tt.want.Subject || !got.Start.Equal(tt.want.Start) || !got.End.Equal(tt.want.End) {
			t.Errorf("%s: auditFilterFromProto = %+v, %v; want %+v", tt.name, got, err, tt.want)
		}
	}
}

func TestAuditEventToProto(t *testing.T) {
	e := auditlog.Entry{Seq: 3, Time: time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("x", 3600)), Subject: "alice",
		Roles: []string{"deployer@production", "viewer"}, Method: "/cutover.v1.AdminService/AbortDeployment",
		Environment: "production", Deployment: "d-4", Summary: "abort d-4", Code: "OK", Reason: "bad build",
		PrevHash: "p", Hash: "h"}
	tests := []struct {
		name string
		in   auditlog.Entry
		want *cutoverv1.AuditEvent
	}{
		{"every field", e, &cutoverv1.AuditEvent{Seq: 3, Time: timestamppb.New(e.Time), Subject: "alice",
			Roles: []string{"deployer@production", "viewer"}, Method: "/cutover.v1.AdminService/AbortDeployment",
			Environment: "production", Deployment: "d-4", Summary: "abort d-4", Code: "OK", Reason: "bad build",
			PrevHash: "p", Hash: "h"}},
		{"zero time is sent", auditlog.Entry{Seq: 1}, &cutoverv1.AuditEvent{Seq: 1, Time: timestamppb.New(time.Time{})}},
	}
	for _, tt := range tests {
		if got := auditEventToProto(tt.in); !proto.Equal(got, tt.want) {
			t.Errorf("%s: auditEventToProto = %v, want %v", tt.name, got, tt.want)
		}
	}
	if got := auditEventsToProto(nil); got.GetEvents() == nil || len(got.GetEvents()) != 0 {
		t.Errorf("auditEventsToProto(nil) = %v", got)
	}
}

// TestListAuditEvents: the handler serves what the log holds, filtered,
// and a client can verify the chain from the answer.
func TestListAuditEvents(t *testing.T) {
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	log := audit.New(audit.Config{Store: st})
	for _, env := range []string{"production", "staging", "production"} {
		if _, err := log.Append(t.Context(), auditlog.Entry{Subject: "alice", Environment: env, Code: "OK"}); err != nil {
			t.Fatal(err)
		}
	}
	s := New(Config{Audit: log})
	all, err := s.ListAuditEvents(t.Context(), &cutoverv1.ListAuditEventsRequest{})
	if err != nil || len(all.GetEvents()) != 3 {
		t.Fatalf("ListAuditEvents = %v, %v", all, err)
	}
	var es []auditlog.Entry
	for _, ev := range all.GetEvents() {
		es = append(es, auditlog.Entry{Seq: ev.GetSeq(), Time: ev.GetTime().AsTime(), Subject: ev.GetSubject(), Roles: ev.GetRoles(),
			Method: ev.GetMethod(), Environment: ev.GetEnvironment(), Deployment: ev.GetDeployment(), Summary: ev.GetSummary(),
			Code: ev.GetCode(), Reason: ev.GetReason(), PrevHash: ev.GetPrevHash(), Hash: ev.GetHash()})
	}
	if err := auditlog.Verify(es); err != nil {
		t.Errorf("the served chain does not verify: %v", err)
	}
	prod, err := s.ListAuditEvents(t.Context(), &cutoverv1.ListAuditEventsRequest{Environment: "production"})
	if err != nil || len(prod.GetEvents()) != 2 || prod.GetEvents()[1].GetSeq() != 3 {
		t.Errorf("production events = %v, %v", prod, err)
	}
	if _, err := s.ListAuditEvents(t.Context(), &cutoverv1.ListAuditEventsRequest{
		StartTime: timestamppb.New(t0.Add(time.Hour)), EndTime: timestamppb.New(t0)}); !errors.Is(err, errkind.InvalidArgument) {
		t.Errorf("start after end: err = %v, want InvalidArgument", err)
	}
	if _, err := New(Config{}).ListAuditEvents(t.Context(), &cutoverv1.ListAuditEventsRequest{}); !errors.Is(err, errkind.FailedPrecondition) {
		t.Errorf("without a log: err = %v, want FailedPrecondition", err)
	}
}
