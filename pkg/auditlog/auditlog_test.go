package auditlog

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/pkg/errkind"
)

// chain returns n entries that verify.
func chain(n int) []Entry {
	t0 := time.Date(2026, 3, 4, 5, 6, 7, 890, time.UTC)
	var out []Entry
	prev := ""
	for i := range n {
		e := Entry{
			Seq: uint64(i + 1), Time: t0.Add(time.Duration(i) * time.Second),
			Subject: "alice", Roles: []string{"deployer@production"},
			Method: "/cutover.v1.AdminService/PrepareDeployment", Environment: "production",
			Deployment: "d-1", Summary: "prepare d-1", Code: "OK", PrevHash: prev,
		}
		e.Hash = e.ComputeHash()
		prev = e.Hash
		out = append(out, e)
	}
	return out
}

// rehash recomputes the hashes of es from index i on, keeping the links, as
// someone rewriting the log would.
func rehash(es []Entry, i int) {
	for ; i < len(es); i++ {
		if i > 0 {
			es[i].PrevHash = es[i-1].Hash
		}
		es[i].Hash = es[i].ComputeHash()
	}
}

func TestComputeHashKnownValue(t *testing.T) {
	// A fixed vector, so that a change of the encoding is seen, and a
	// re-implementation can check itself against it (this one was computed
	// by a separate Python implementation of the package comment).
	e := Entry{
		Seq: 1, Time: time.Date(2026, 1, 2, 3, 4, 5, 600_000_000, time.FixedZone("x", 3600)),
		Subject: "alice", Roles: []string{"admin"}, Method: "/cutover.v1.AdminService/CreateEnvironment",
		Environment: "production", Summary: "create environment production", Code: "OK",
	}
	const want = "67be68ad7dbfd6ba872df228e7747af85f588cee7cce362371f39c82f77f4c27"
	if got := e.ComputeHash(); got != want {
		t.Errorf("ComputeHash = %s, want %s (the encoding changed: give it a new tag)", got, want)
	}
	if len(e.ComputeHash()) != 64 || strings.ToLower(e.ComputeHash()) != e.ComputeHash() {
		t.Errorf("ComputeHash = %q, want 64 lowercase hex digits", e.ComputeHash())
	}
}

func TestComputeHashCoversEveryField(t *testing.T) {
	base := chain(2)[1]
	h := base.ComputeHash()
	changes := map[string]func(e *Entry){
		"seq":           func(e *Entry) { e.Seq++ },
		"time":          func(e *Entry) { e.Time = e.Time.Add(time.Nanosecond) },
		"subject":       func(e *Entry) { e.Subject += "x" },
		"roles":         func(e *Entry) { e.Roles = append(e.Roles, "admin") },
		"role":          func(e *Entry) { e.Roles = []string{"deployer@staging"} },
		"no roles":      func(e *Entry) { e.Roles = nil },
		"method":        func(e *Entry) { e.Method += "x" },
		"environment":   func(e *Entry) { e.Environment = "" },
		"deployment":    func(e *Entry) { e.Deployment = "d-2" },
		"summary":       func(e *Entry) { e.Summary = "abort d-1" },
		"code":          func(e *Entry) { e.Code = "PERMISSION_DENIED" },
		"reason":        func(e *Entry) { e.Reason = "x" },
		"prev hash":     func(e *Entry) { e.PrevHash = strings.Repeat("0", 64) },
		"moved between": func(e *Entry) { e.Environment, e.Deployment = e.Environment+e.Deployment, "" },
		"role split":    func(e *Entry) { e.Roles = []string{"deployer", "@production"} },
	}
	for name, change := range changes {
		e := base
		e.Roles = append([]string(nil), base.Roles...)
		change(&e)
		if e.ComputeHash() == h {
			t.Errorf("%s: changing it keeps the hash", name)
		}
	}
	// Not covered: Hash itself, and the time's zone (UTC is hashed).
	e := base
	e.Hash = "whatever"
	e.Time = e.Time.In(time.FixedZone("x", -7200))
	if e.ComputeHash() != h {
		t.Error("the hash depends on Hash or on the time's zone")
	}
	e.Roles = []string{}
	if e.ComputeHash() == h {
		t.Error("no roles hashes like one role")
	}
	base.Roles = nil
	e.Roles = []string{}
	if base.ComputeHash() != e.ComputeHash() {
		t.Error("nil and empty roles hash differently")
	}
}

func TestVerify(t *testing.T) {
	tests := []struct {
		name   string
		change func([]Entry) []Entry
		seq    uint64
		reason string
	}{
		{"empty", func([]Entry) []Entry { return nil }, 0, ""},
		{"intact", func(es []Entry) []Entry { return es }, 0, ""},
		{"one", func(es []Entry) []Entry { return es[:1] }, 0, ""},
		{"summary changed", func(es []Entry) []Entry { es[6].Summary = "nothing"; return es }, 7,
			"entry 7: its hash does not match its content (changed after it was written?)"},
		{"changed and rehashed", func(es []Entry) []Entry { es[6].Summary = "nothing"; es[6].Hash = es[6].ComputeHash(); return es }, 8,
			"entry 8: prev_hash does not match entry 7's hash"},
		{"rewritten from 7 on", func(es []Entry) []Entry { es[6].Summary = "nothing"; rehash(es, 6); return es }, 0, ""},
		{"missing", func(es []Entry) []Entry { return append(es[:4], es[5:]...) }, 5,
			"entry 5: missing (the list goes from entry 4 to entry 6)"},
		{"missing and renumbered", func(es []Entry) []Entry {
			es = append(es[:4], es[5:]...)
			for i := 4; i < len(es); i++ {
				es[i].Seq--
			}
			rehash(es, 5)
			es[4].Hash = es[4].ComputeHash() // its prev_hash still names the dropped entry
			return es
		}, 5, "entry 5: prev_hash does not match entry 4's hash"},
		{"first missing", func(es []Entry) []Entry { return es[1:] }, 1, "entry 1: missing (the list starts at entry 2)"},
		{"swapped", func(es []Entry) []Entry { es[2], es[3] = es[3], es[2]; return es }, 3, "entry 3: missing (the list goes from entry 2 to entry 4)"},
		{"repeated", func(es []Entry) []Entry { return append(es[:4:4], es[3:]...) }, 4, "entry 4: out of order: it comes after entry 4"},
		{"numbered 0", func(es []Entry) []Entry { es[0].Seq = 0; return es }, 0, "entry 0: position 1 holds an entry numbered 0; entries are numbered from 1"},
		{"first with prev hash", func(es []Entry) []Entry { es[0].PrevHash = "ab"; rehash(es[:1], 0); return es }, 1,
			"entry 1: prev_hash is not empty, but this is the first entry"},
		{"hash emptied", func(es []Entry) []Entry { es[9].Hash = ""; return es }, 10,
			"entry 10: its hash does not match its content (changed after it was written?)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Verify(tt.change(chain(10)))
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("Verify = %v, want nil", err)
				}
				return
			}
			var b *BrokenError
			if !errors.As(err, &b) || b.Seq != tt.seq || err.Error() != tt.reason {
				t.Fatalf("Verify = %v (%#v), want entry %d: %q", err, err, tt.seq, tt.reason)
			}
			if !errors.Is(err, errkind.DataLoss) {
				t.Error("a broken chain is not DataLoss")
			}
		})
	}
}

// FuzzVerify: an entry built from any fields hashes deterministically, a
// chain of them verifies, and any change to one field of one entry is
// found at that entry.
func FuzzVerify(f *testing.F) {
	f.Add(uint64(1), int64(1700000000), int64(5), "alice", "deployer@production", "/m", "prod", "d-1", "sum", "OK", "", 3, 1, byte('x'))
	f.Add(uint64(0), int64(0), int64(0), "", "", "", "", "", "", "", "", 1, 0, byte(0))
	f.Add(uint64(1)<<63, int64(-62135596800), int64(999999999), "\xff", "a\x00b", "é", "\n", "\t", "x=y", "", "r", 5, 4, byte(0xff))
	f.Fuzz(func(t *testing.T, seq uint64, sec, nsec int64, subject, role, method, env, dep, summary, code, reason string, n, at int, b byte) {
		if n < 1 || n > 8 {
			n = 1 + (n%8+8)%8
		}
		at = (at%n + n) % n
		tm := time.Unix(sec%(1<<40), nsec%1_000_000_000)
		es := make([]Entry, n)
		prev := ""
		for i := range es {
			es[i] = Entry{Seq: uint64(i + 1), Time: tm.Add(time.Duration(i)), Subject: subject, Roles: []string{role, subject},
				Method: method, Environment: env, Deployment: dep, Summary: summary, Code: code, Reason: reason, PrevHash: prev}
			es[i].Hash = es[i].ComputeHash()
			if es[i].Hash != es[i].ComputeHash() {
				t.Fatal("ComputeHash is not deterministic")
			}
			prev = es[i].Hash
		}
		if err := Verify(es); err != nil {
			t.Fatalf("a fresh chain does not verify: %v", err)
		}
		// Round trip through UTC and another zone changes nothing.
		moved := es[at]
		moved.Time = moved.Time.In(time.FixedZone("z", 5*3600))
		if moved.ComputeHash() != es[at].Hash {
			t.Fatal("the hash depends on the time's zone")
		}
		// One change, chosen by seq, is found at entry at+1.
		e := &es[at]
		switch seq % 6 {
		case 0:
			e.Summary += string(rune(b))
		case 1:
			e.Subject = string(b) + e.Subject
		case 2:
			e.Time = e.Time.Add(time.Duration(b) + 1)
		case 3:
			e.Roles = append(e.Roles, string(b))
		case 4:
			e.Reason, e.Code = e.Code, e.Reason+string(b)
		case 5:
			e.Seq += uint64(b) + uint64(n)
		}
		var broken *BrokenError
		err := Verify(es)
		if !errors.As(err, &broken) || broken.Seq != uint64(at+1) {
			t.Fatalf("change %d at entry %d: Verify = %v", seq%6, at+1, err)
		}
	})
}
