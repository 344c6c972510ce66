package main

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cutover-dev/cutover/pkg/auditlog"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

var auditT0 = time.Date(2026, 4, 5, 6, 7, 8, 900, time.UTC)

// auditChain returns n events that form a valid chain, as a controller
// serves them.
func auditChain(n int) []*cutoverv1.AuditEvent {
	var out []*cutoverv1.AuditEvent
	prev := ""
	for i := range n {
		e := auditlog.Entry{Seq: uint64(i + 1), Time: auditT0.Add(time.Duration(i) * time.Minute), Subject: "alice",
			Roles: []string{"deployer@production"}, Method: "/cutover.v1.AdminService/PrepareDeployment",
			Environment: "production", Deployment: "d-1", Summary: "prepare d-1", Code: "OK", PrevHash: prev}
		e.Hash = e.ComputeHash()
		prev = e.Hash
		out = append(out, &cutoverv1.AuditEvent{Seq: e.Seq, Time: timestamppb.New(e.Time), Subject: e.Subject, Roles: e.Roles,
			Method: e.Method, Environment: e.Environment, Deployment: e.Deployment, Summary: e.Summary, Code: e.Code,
			PrevHash: e.PrevHash, Hash: e.Hash})
	}
	return out
}

func TestVerifyEvents(t *testing.T) {
	tests := []struct {
		name   string
		change func([]*cutoverv1.AuditEvent) []*cutoverv1.AuditEvent
		want   string // the line printed, or the error
		ok     bool
	}{
		{"empty", func([]*cutoverv1.AuditEvent) []*cutoverv1.AuditEvent { return nil }, "audit log verified: 0 entries (the log is empty)", true},
		{"intact", func(es []*cutoverv1.AuditEvent) []*cutoverv1.AuditEvent { return es }, "audit log verified: 10 entries, last hash ", true},
		{"summary changed", func(es []*cutoverv1.AuditEvent) []*cutoverv1.AuditEvent { es[6].Summary = "nothing"; return es },
			"audit log broken at entry 7: its hash does not match its content (changed after it was written?)", false},
		{"time changed", func(es []*cutoverv1.AuditEvent) []*cutoverv1.AuditEvent { es[2].Time.Nanos++; return es },
			"audit log broken at entry 3: its hash does not match its content", false},
		{"time dropped", func(es []*cutoverv1.AuditEvent) []*cutoverv1.AuditEvent { es[0].Time = nil; return es },
			"audit log broken at entry 1: its hash does not match its content", false},
		{"entry left out", func(es []*cutoverv1.AuditEvent) []*cutoverv1.AuditEvent { return append(es[:4], es[5:]...) },
			"audit log broken at entry 5: missing (the list goes from entry 4 to entry 6)", false},
		{"filtered list", func(es []*cutoverv1.AuditEvent) []*cutoverv1.AuditEvent { return es[3:] },
			"audit log broken at entry 1: missing (the list starts at entry 4)", false},
	}
	for _, tt := range tests {
		got, err := verifyEvents(tt.change(auditChain(10)))
		if tt.ok {
			if err != nil || !strings.HasPrefix(got, tt.want) {
				t.Errorf("%s: verifyEvents = %q, %v; want %q…", tt.name, got, err, tt.want)
			}
			continue
		}
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("%s: verifyEvents = %q, %v; want error %q…", tt.name, got, err, tt.want)
		}
	}
	if got, _ := verifyEvents(auditChain(3)); !strings.HasSuffix(got, auditChain(3)[2].GetHash()) {
		t.Errorf("verifyEvents = %q, want the last hash at the end", got)
	}
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 4, 5, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Time
		bad  bool
	}{
		{in: "90m", want: now.Add(-90 * time.Minute)},
		{in: "24h", want: now.Add(-24 * time.Hour)},
		{in: "7d", want: now.AddDate(0, 0, -7)},
		{in: " 1h30m ", want: now.Add(-90 * time.Minute)},
		{in: "2026-01-02T03:04:05Z", want: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)},
		{in: "2026-01-02T03:04:05.5+01:00", want: time.Date(2026, 1, 2, 2, 4, 5, 500_000_000, time.UTC)},
		{in: "2026-01-02T03:04:05", want: time.Date(2026, 1, 2, 3, 4, 5, 0, time.Local)},
		{in: "2026-01-02 03:04", want: time.Date(2026, 1, 2, 3, 4, 0, 0, time.Local)},
		{in: "2026-01-02", want: time.Date(2026, 1, 2, 0, 0, 0, 0, time.Local)},
		{in: "-1h", bad: true},
		{in: "yesterday", bad: true},
		{in: "", bad: true},
		{in: "d", bad: true},
	}
	for _, tt := range tests {
		got, err := parseSince(tt.in, now)
		if tt.bad {
			if err == nil {
				t.Errorf("parseSince(%q) = %v, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || !got.Equal(tt.want) {
			t.Errorf("parseSince(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestFormatAuditEvents(t *testing.T) {
	es := auditChain(2)
	es[1].Method = "/cutover.v1.AdminService/AbortDeployment"
	es[1].Code = "PERMISSION_DENIED"
	es[1].Reason = "not today"
	es[1].Summary = "abort\td-1\n\x1b[2Jhidden \u202eevil"
	es[1].Environment = ""
	var b bytes.Buffer
	formatAuditEvents(&b, &cutoverv1.ListAuditEventsResponse{Events: es})
	out := b.String()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("want a header and 2 rows, got:\n%s", out)
	}
	if f := strings.Fields(lines[0]); strings.Join(f, " ") != "SEQ TIME SUBJECT METHOD ENVIRONMENT DEPLOYMENT CODE SUMMARY" {
		t.Errorf("header = %q", lines[0])
	}
	for _, want := range []string{"1 ", "alice", "PrepareDeployment", "production", "d-1", "OK", "prepare d-1"} {
		if !strings.Contains(lines[1], want) {
			t.Errorf("row %q lacks %q", lines[1], want)
		}
	}
	for _, want := range []string{"AbortDeployment", " - ", "PERMISSION_DENIED", `abort\td-1\n\x1b[2Jhidden \u202eevil (reason: not today)`} {
		if !strings.Contains(lines[2], want) {
			t.Errorf("row %q lacks %q", lines[2], want)
		}
	}
	if strings.ContainsAny(out, "\x1b\t\u202e") {
		t.Errorf("control characters reach the terminal: %q", out)
	}
}

// auditAdmin serves ListAuditEvents from a canned list and records the
// requests.
type auditAdmin struct {
	cutoverv1.UnimplementedAdminServiceServer
	mu     sync.Mutex
	reqs   []*cutoverv1.ListAuditEventsRequest
	events []*cutoverv1.AuditEvent
}

func (f *auditAdmin) ListAuditEvents(_ context.Context, req *cutoverv1.ListAuditEventsRequest) (*cutoverv1.ListAuditEventsResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs = append(f.reqs, req)
	return &cutoverv1.ListAuditEventsResponse{Events: f.events}, nil
}

func (f *auditAdmin) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.reqs)
}

func (f *auditAdmin) last() *cutoverv1.ListAuditEventsRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reqs[len(f.reqs)-1]
}

func TestAuditCommands(t *testing.T) {
	f := &auditAdmin{events: auditChain(5)}
	addr := startFake(t, f)

	code, out, errOut := runCtl(t, addr, "audit", "verify")
	if code != 0 || !strings.HasPrefix(out, "audit log verified: 5 entries, last hash "+f.events[4].GetHash()) || errOut != "" {
		t.Errorf("verify of an intact log: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if !proto.Equal(f.last(), &cutoverv1.ListAuditEventsRequest{}) {
		t.Errorf("verify asked for %v, want everything", f.last())
	}

	f.mu.Lock()
	f.events[3].Summary = "rewritten"
	f.mu.Unlock()
	code, out, errOut = runCtl(t, addr, "audit", "verify")
	if want := "error: audit log broken at entry 4: its hash does not match its content (changed after it was written?)\n"; code == 0 || errOut != want || out != "" {
		t.Errorf("verify of a changed log: exit %d, stdout %q, stderr %q; want stderr %q", code, out, errOut, want)
	}

	code, out, errOut = runCtl(t, addr, "audit", "list", "--env", "production", "--deployment", "d-1", "--subject", "alice",
		"--since", "2026-01-02T00:00:00Z", "--until", "2026-01-03T00:00:00Z")
	want := &cutoverv1.ListAuditEventsRequest{Environment: "production", Deployment: "d-1", Subject: "alice",
		StartTime: timestamppb.New(time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)), EndTime: timestamppb.New(time.Date(2026, 1, 3, 0, 0, 0, 0, time.UTC))}
	if code != 0 || !proto.Equal(f.last(), want) || strings.Count(out, "\n") != 6 {
		t.Errorf("list: exit %d, request %v, stdout %q, stderr %q", code, f.last(), out, errOut)
	}

	before := time.Now()
	if code, _, errOut = runCtl(t, addr, "audit", "list", "--environment", "staging", "--since", "1h"); code != 0 {
		t.Fatalf("list --since 1h: exit %d, %s", code, errOut)
	}
	after := time.Now()
	if got := f.last(); got.GetEnvironment() != "staging" || got.GetStartTime().AsTime().Before(before.Add(-time.Hour)) ||
		got.GetStartTime().AsTime().After(after.Add(-time.Hour)) || got.GetEndTime() != nil {
		t.Errorf("list --since 1h asked for %v", got)
	}

	code, out, _ = runCtl(t, addr, "audit", "list", "-o", "json")
	var resp cutoverv1.ListAuditEventsResponse
	if code != 0 || !strings.Contains(out, `"prev_hash"`) || protojson.Unmarshal([]byte(out), &resp) != nil || len(resp.GetEvents()) != 5 {
		t.Errorf("list -o json: exit %d, %q", code, out)
	}

	n := f.count()
	if code, _, errOut = runCtl(t, addr, "audit", "list", "--since", "yesterday"); code == 0 || !strings.Contains(errOut, "--since") {
		t.Errorf("list --since yesterday: exit %d, stderr %q", code, errOut)
	}
	if f.count() != n {
		t.Error("a bad --since still sent a request")
	}
}
