package audit

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/controlplane/store"
	"github.com/cutover-dev/cutover/pkg/auditlog"
	"github.com/cutover-dev/cutover/pkg/errkind"
	"github.com/cutover-dev/cutover/pkg/token"
)

// fakeClock returns t0, t0+1s, t0+2s… (safe for concurrent use).
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Second)
	return c.t
}

var t0 = time.Date(2026, 5, 6, 7, 8, 9, 123456789, time.UTC)

func openStore(t *testing.T, dir string) *store.Store {
	t.Helper()
	s, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newLog(t *testing.T) (*Log, *store.Store) {
	t.Helper()
	s := openStore(t, t.TempDir())
	t.Cleanup(func() { s.Close() })
	c := &fakeClock{t: t0}
	return New(Config{Store: s, Clock: c.now}), s
}

func TestAppendChainsAndRedacts(t *testing.T) {
	l, _ := newLog(t)
	ctx := t.Context()
	tok := token.New()
	e1, err := l.Append(ctx, auditlog.Entry{
		Seq: 99, Time: t0.Add(-time.Hour), PrevHash: "forged", Hash: "forged", // ignored
		Subject: "alice", Roles: []string{"admin"}, Method: "/cutover.v1.AdminService/CreateToken",
		Summary: "create token " + tok.Operator(), Code: "OK", Reason: "dsn postgres://app:hunter2@db/app",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := auditlog.Entry{
		Seq: 1, Time: t0.Add(time.Second), Subject: "alice", Roles: []string{"admin"},
		Method: "/cutover.v1.AdminService/CreateToken", Summary: "create token cutover." + tok.ID + ".***",
		Code: "OK", Reason: "dsn postgres://app:***@db/app",
	}
	want.Hash = want.ComputeHash()
	if fmt.Sprint(e1) != fmt.Sprint(want) {
		t.Errorf("Append =\n %+v\nwant\n %+v", e1, want)
	}
	e2, err := l.Append(ctx, auditlog.Entry{Subject: "bob", Method: "m", Environment: "production", Code: "PERMISSION_DENIED",
		Summary: "bad \xff byte"})
	if err != nil {
		t.Fatal(err)
	}
	if e2.Seq != 2 || e2.PrevHash != e1.Hash || e2.Hash != e2.ComputeHash() || e2.Summary != "bad \uFFFD byte" {
		t.Errorf("second entry = %+v", e2)
	}
	got, err := l.List(ctx, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || fmt.Sprint(got[0]) != fmt.Sprint(e1) || fmt.Sprint(got[1]) != fmt.Sprint(e2) {
		t.Errorf("List = %+v\nwant what Append returned", got)
	}
	if err := l.Verify(ctx); err != nil {
		t.Errorf("Verify = %v", err)
	}
}

// TestConcurrentAppendsFormOneChain: appends from many goroutines are
// serialized by the store into one chain without gaps.
func TestConcurrentAppendsFormOneChain(t *testing.T) {
	l, _ := newLog(t)
	const workers, each = 16, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				if _, err := l.Append(t.Context(), auditlog.Entry{Subject: fmt.Sprint("w", w), Summary: fmt.Sprint(i), Code: "OK"}); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	es, err := l.List(t.Context(), Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != workers*each {
		t.Fatalf("%d entries, want %d", len(es), workers*each)
	}
	if err := auditlog.Verify(es); err != nil {
		t.Fatalf("concurrent appends do not form one chain: %v", err)
	}
	for i := 1; i < len(es); i++ {
		if !es[i].Time.After(es[i-1].Time) {
			t.Errorf("entry %d is not later than entry %d", es[i].Seq, es[i-1].Seq)
		}
	}
}

func TestListFilters(t *testing.T) {
	l, _ := newLog(t)
	ctx := t.Context()
	for _, e := range []auditlog.Entry{
		{Subject: "alice", Environment: "production", Deployment: "d-1"}, // t0+1s
		{Subject: "bob", Environment: "production", Deployment: "d-2"},   // t0+2s
		{Subject: "alice", Environment: "staging", Deployment: "d-3"},    // t0+3s
		{Subject: "controller"}, // t0+4s
	} {
		if _, err := l.Append(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	tests := []struct {
		name string
		f    Filter
		want []uint64
	}{
		{"all", Filter{}, []uint64{1, 2, 3, 4}},
		{"environment", Filter{Environment: "production"}, []uint64{1, 2}},
		{"deployment", Filter{Deployment: "d-3"}, []uint64{3}},
		{"subject", Filter{Subject: "alice"}, []uint64{1, 3}},
		{"subject and environment", Filter{Subject: "alice", Environment: "production"}, []uint64{1}},
		{"start is inclusive", Filter{Start: at(2)}, []uint64{2, 3, 4}},
		{"end is exclusive", Filter{End: at(3)}, []uint64{1, 2}},
		{"between", Filter{Start: at(2), End: at(4)}, []uint64{2, 3}},
		{"start in another zone", Filter{Start: at(4).In(time.FixedZone("x", 3600))}, []uint64{4}},
		{"none", Filter{Subject: "carol"}, nil},
		{"empty window", Filter{Start: at(3), End: at(3)}, nil},
	}
	for _, tt := range tests {
		es, err := l.List(ctx, tt.f)
		if err != nil {
			t.Fatal(err)
		}
		var seqs []uint64
		for _, e := range es {
			seqs = append(seqs, e.Seq)
		}
		if fmt.Sprint(seqs) != fmt.Sprint(tt.want) {
			t.Errorf("%s: List = %v, want %v", tt.name, seqs, tt.want)
		}
	}
}

// TestDurableAcrossReopen: what Append returned is there, and verifies,
// after the store is closed and opened again; appends go on from there.
func TestDurableAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	l := New(Config{Store: s, Clock: (&fakeClock{t: t0}).now})
	e, err := l.Append(t.Context(), auditlog.Entry{Subject: "alice", Code: "OK"})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()

	s = openStore(t, dir)
	defer s.Close()
	l = New(Config{Store: s}) // real clock
	e2, err := l.Append(t.Context(), auditlog.Entry{Subject: "bob", Code: "OK"})
	if err != nil {
		t.Fatal(err)
	}
	if e2.Seq != 2 || e2.PrevHash != e.Hash {
		t.Errorf("append after reopen = %+v, want seq 2 after %s", e2, e.Hash)
	}
	if err := l.Verify(t.Context()); err != nil {
		t.Errorf("Verify after reopen = %v", err)
	}
}

// TestTamperedEntryIsNamed: a record changed in the store behind the log's
// back is found by Verify, which names it.
func TestTamperedEntryIsNamed(t *testing.T) {
	l, s := newLog(t)
	ctx := t.Context()
	for i := range 10 {
		if _, err := l.Append(ctx, auditlog.Entry{Subject: "alice", Summary: fmt.Sprint("abort d-", i), Code: "OK"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Verify(ctx); err != nil {
		t.Fatalf("Verify before tampering = %v", err)
	}
	tamper := func(seq uint64, change func(r *model.AuditRecord)) {
		t.Helper()
		if err := s.UpdateBolt(func(tx *store.Tx) error {
			r, err := tx.Audit(seq)
			if err != nil {
				return err
			}
			change(r)
			return tx.PutAudit(r)
		}); err != nil {
			t.Fatal(err)
		}
	}
	check := func(seq uint64, reason string) {
		t.Helper()
		err := l.Verify(ctx)
		var broken *auditlog.BrokenError
		if !errors.As(err, &broken) || broken.Seq != seq || !strings.Contains(err.Error(), reason) || !errors.Is(err, errkind.DataLoss) {
			t.Errorf("Verify = %v; want entry %d named, %q, DataLoss", err, seq, reason)
		}
	}
	tamper(7, func(r *model.AuditRecord) { r.Summary = "nothing happened" })
	check(7, "entry 7: its hash does not match its content")
	// A tamperer who rehashes the entry is caught at the next one.
	tamper(7, func(r *model.AuditRecord) {
		e := fromRecord(r)
		r.Hash = e.ComputeHash()
	})
	check(8, "entry 8: prev_hash does not match entry 7's hash")
	// An entry earlier in the log is reported first.
	tamper(3, func(r *model.AuditRecord) { r.Subject = "mallory" })
	check(3, "entry 3: its hash does not match its content")
	// The log still takes appends (it does not repair itself).
	if _, err := l.Append(ctx, auditlog.Entry{Subject: "alice"}); err != nil {
		t.Fatal(err)
	}
	check(3, "entry 3")
}

func TestAppendFailsWhenTheStoreDoes(t *testing.T) {
	s := openStore(t, t.TempDir())
	l := New(Config{Store: s})
	s.Close()
	if _, err := l.Append(t.Context(), auditlog.Entry{Subject: "alice", Method: "m"}); err == nil || !strings.Contains(err.Error(), "must not proceed") {
		t.Errorf("Append on a closed store: err = %v", err)
	}
}

// TestAppendClipsLongText: a summary or reason that echoes a large input
// (a 4 MiB request refused with an error that quotes it) is cut, at a
// character boundary, so that the entry and the lists that hold it stay
// small enough to serve.
func TestAppendClipsLongText(t *testing.T) {
	l, _ := newLog(t)
	e, err := l.Append(t.Context(), auditlog.Entry{Subject: "alice", Method: "m", Code: "INVALID_ARGUMENT",
		Summary: strings.Repeat("x", 4<<20), Reason: strings.Repeat("é", 3000)})
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]string{"summary": e.Summary, "reason": e.Reason} {
		if len(s) > maxText+len("…") || !strings.HasSuffix(s, "…") || !utf8.ValidString(s) {
			t.Errorf("%s of %d bytes (ends %q), want at most %d and a cut marked with …", name, len(s), s[max(0, len(s)-8):], maxText)
		}
	}
	// A password the cut would split is redacted before the cut.
	split, err := l.Append(t.Context(), auditlog.Entry{Subject: "alice", Method: "m",
		Reason: strings.Repeat("x", maxText-20) + " dsn postgres://app:hunter2@db/app"})
	if err != nil || strings.Contains(split.Reason, "hunt") {
		t.Errorf("reason cut inside a password = %q (%v)", split.Reason[maxText-40:], err)
	}
	if short, err := l.Append(t.Context(), auditlog.Entry{Subject: "alice", Method: "m", Reason: "short"}); err != nil || short.Reason != "short" {
		t.Errorf("a short reason became %q (%v)", short.Reason, err)
	}
	if err := l.Verify(t.Context()); err != nil {
		t.Errorf("Verify = %v", err)
	}
}
