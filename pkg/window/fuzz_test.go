package window

import (
	"errors"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/pkg/errkind"
)

// FuzzParse feeds Parse arbitrary window texts: it never panics, a refusal
// is errkind.InvalidArgument, an accepted window's canonical text parses to
// the same window, and the schedule answers Open, OpenUntil and Next
// consistently around an arbitrary time.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"Mon-Fri 02:00-04:00 Europe/Lisbon",
		"Sat,Sun 22:00-01:00 UTC",
		"Mon,Wed-Fri 00:00-24:00 America/New_York",
		"Sun 02:30-03:00 Europe/Lisbon",   // a spring-forward gap
		"Sun 01:30-01:45 America/Chicago", // a fall-back repeat
		"Fri-Mon 23:59-00:01 Pacific/Chatham",
		"mon-MON 00:00-24:00 Asia/Kathmandu",
		"  Mon\t02:00-04:00   UTC ",
		"Mon 24:00-01:00 UTC",
		"Mon 02:00-02:00 UTC",
		"Mon 2:00-04:00 UTC",
		"Mon 02:00-04:00 Local",
		"Mon 02:00-04:00 ../../etc/passwd",
		"Mon,,Tue 02:00-04:00 UTC",
		"Mon-Tue-Wed 02:00-04:00 UTC",
		"Mon +2:00-04:00 UTC",
	} {
		f.Add(s, int64(1772330400)) // 2026-03-01 02:00 UTC, a Sunday
	}
	f.Add("Sun 01:00-03:00 Europe/Lisbon", int64(1774746000)) // 2026-03-29, Lisbon springs forward
	f.Fuzz(func(t *testing.T, s string, unix int64) {
		w, err := Parse(s)
		if err != nil {
			if !errors.Is(err, errkind.InvalidArgument) {
				t.Fatalf("Parse(%q): error %v is not InvalidArgument", s, err)
			}
			return
		}
		w2, err := Parse(w.String())
		if err != nil {
			t.Fatalf("Parse(%q) = %q, which Parse refuses: %v", s, w.String(), err)
		}
		if w2.String() != w.String() || w2.days != w.days || w2.start != w.start || w2.end != w.end || w2.loc.String() != w.loc.String() {
			t.Fatalf("Parse(%q) = %+v, its text %q parses to %+v", s, w, w.String(), w2)
		}
		if w.start < 0 || w.start >= 24*60 || w.end < 0 || w.end > 24*60 {
			t.Fatalf("Parse(%q): start %d, end %d out of a day", s, w.start, w.end)
		}

		// Times far from now make no sense for a window; keep a century around 2000.
		at := time.Unix(946684800+unix%(100*365*24*3600), 0)
		sched := Schedule{w}
		open, closes := sched.Open(at)
		if open && !closes.After(at) {
			t.Fatalf("%q at %v: open, closing at %v", s, at, closes)
		}
		until, untilT := sched.OpenUntil(at)
		if until != open || (open && !untilT.IsZero() && untilT.Before(closes)) {
			t.Fatalf("%q at %v: Open = %v, %v but OpenUntil = %v, %v", s, at, open, closes, until, untilT)
		}
		o, ok := sched.Next(at)
		if !ok {
			t.Fatalf("%q at %v: no next opening", s, at)
		}
		if !o.Open.After(at) || o.Open.Sub(at) > horizon || !o.Close.After(o.Open) {
			t.Fatalf("%q at %v: next opening %v-%v", s, at, o.Open, o.Close)
		}
		if inside, _ := sched.Open(o.Open); !inside {
			t.Fatalf("%q: not open at its own opening %v (after %v)", s, o.Open, at)
		}
		_ = o.Describe()
	})
}
