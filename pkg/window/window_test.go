package window

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/pkg/errkind"
)

func at(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestParseErrors(t *testing.T) {
	tests := map[string]string{
		"":                                 "three parts",
		"Mon-Fri 02:00-04:00":              "three parts",
		"Mon-Fry 02:00-04:00 UTC":          `unknown day "Fry"`,
		"Mon-Fri 2:00-04:00 UTC":           `time "2:00"`,
		"Mon-Fri 02:00-25:00 UTC":          `time "25:00"`,
		"Mon-Fri 24:00-02:00 UTC":          `time "24:00"`,
		"Mon-Fri 02:60-04:00 UTC":          `time "02:60"`,
		"Mon-Fri 02:00 UTC":                "HH:MM-HH:MM",
		"Mon-Fri 02:00-02:00 UTC":          "same time",
		"Mon-Fri 02:00-04:00 Europe/Lisbn": `unknown time zone "Europe/Lisbn"`,
		"Mon-Fri 02:00-04:00 Local":        "unknown time zone",
	}
	for in, want := range tests {
		_, err := Parse(in)
		if !errors.Is(err, errkind.InvalidArgument) || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %v, want InvalidArgument containing %q", in, err, want)
		}
	}
}

func TestOpenAndNext(t *testing.T) {
	tests := []struct {
		name       string
		windows    []string
		now        string
		wantOpen   bool
		wantCloses string // when open
		wantNext   string
	}{
		{
			name:    "weekday window, before it (Lisbon is UTC in winter)",
			windows: []string{"Mon-Fri 02:00-04:00 Europe/Lisbon"},
			now:     "2026-11-26T01:59:00Z", wantOpen: false, wantNext: "2026-11-26T02:00:00Z",
		},
		{
			name:    "inside",
			windows: []string{"Mon-Fri 02:00-04:00 Europe/Lisbon"},
			now:     "2026-11-26T03:00:00Z", wantOpen: true, wantCloses: "2026-11-26T04:00:00Z", wantNext: "2026-11-27T02:00:00Z",
		},
		{
			name:    "closing time is outside",
			windows: []string{"Mon-Fri 02:00-04:00 Europe/Lisbon"},
			now:     "2026-11-26T04:00:00Z", wantOpen: false, wantNext: "2026-11-27T02:00:00Z",
		},
		{
			name:    "friday evening waits for monday",
			windows: []string{"Mon-Fri 02:00-04:00 Europe/Lisbon"},
			now:     "2026-11-27T10:00:00Z", wantOpen: false, wantNext: "2026-11-30T02:00:00Z",
		},
		{
			name:    "summer time: Lisbon is UTC+1",
			windows: []string{"Mon-Fri 02:00-04:00 Europe/Lisbon"},
			now:     "2026-07-01T01:30:00Z", wantOpen: true, wantCloses: "2026-07-01T03:00:00Z", wantNext: "2026-07-02T01:00:00Z",
		},
		{
			name:    "crossing midnight, after midnight on Monday belongs to Sunday's window",
			windows: []string{"Sat,Sun 22:00-01:00 UTC"},
			now:     "2026-11-30T00:30:00Z", wantOpen: true, wantCloses: "2026-11-30T01:00:00Z", wantNext: "2026-12-05T22:00:00Z",
		},
		{
			name:    "crossing midnight, Friday night is not in it",
			windows: []string{"Sat,Sun 22:00-01:00 UTC"},
			now:     "2026-11-27T23:00:00Z", wantOpen: false, wantNext: "2026-11-28T22:00:00Z",
		},
		{
			name:    "DST spring forward: 01:00 jumps to 02:00 in Lisbon on 2026-03-29, a 2h window keeps local hours",
			windows: []string{"Sun 00:30-03:00 Europe/Lisbon"},
			now:     "2026-03-29T01:30:00Z", wantOpen: true, wantCloses: "2026-03-29T02:00:00Z", wantNext: "2026-04-04T23:30:00Z",
		},
		{
			name:    "DST fall back: 2026-10-25 in Lisbon, window opens at local 02:00 = UTC 02:00",
			windows: []string{"Sun 02:00-03:00 Europe/Lisbon"},
			now:     "2026-10-25T00:00:00Z", wantOpen: false, wantNext: "2026-10-25T02:00:00Z",
		},
		{
			name:    "whole day and wrapping day range",
			windows: []string{"Fri-Mon 00:00-24:00 UTC"},
			now:     "2026-11-30T23:59:00Z", wantOpen: true, wantCloses: "2026-12-01T00:00:00Z", wantNext: "2026-12-04T00:00:00Z",
		},
		{
			name:    "two windows: nearest opening wins",
			windows: []string{"Mon-Fri 02:00-04:00 Europe/Lisbon", "Sat,Sun 22:00-01:00 UTC"},
			now:     "2026-11-27T10:00:00Z", wantOpen: false, wantNext: "2026-11-28T22:00:00Z",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParseAll(tt.windows)
			if err != nil {
				t.Fatal(err)
			}
			now := at(t, tt.now)
			open, closes := s.Open(now)
			if open != tt.wantOpen {
				t.Fatalf("Open(%v) = %v, want %v", now, open, tt.wantOpen)
			}
			if open && !closes.Equal(at(t, tt.wantCloses)) {
				t.Errorf("closes %v, want %v", closes.UTC(), tt.wantCloses)
			}
			next, ok := s.Next(now)
			if !ok || !next.Open.Equal(at(t, tt.wantNext)) {
				t.Errorf("Next = %v (%v), want %v", next.Open.UTC(), ok, tt.wantNext)
			}
		})
	}
}

func TestEmptyScheduleAlwaysOpen(t *testing.T) {
	var s Schedule
	if open, _ := s.Open(time.Now()); !open {
		t.Fatal("no windows must mean always open")
	}
	if _, ok := s.Next(time.Now()); ok {
		t.Fatal("no windows has no next opening")
	}
}

func TestDescribe(t *testing.T) {
	s, _ := ParseAll([]string{"Mon-Fri 02:00-04:00 Europe/Lisbon"})
	next, _ := s.Next(at(t, "2026-07-01T10:00:00Z"))
	got := next.Describe()
	if !strings.Contains(got, "Thu 2026-07-02 02:00 WEST") || !strings.Contains(got, "2026-07-02 01:00 UTC") {
		t.Fatalf("Describe = %q", got)
	}
}

func TestOpenUntil(t *testing.T) {
	sched := func(ws ...string) Schedule {
		s, err := ParseAll(ws)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if open, closes := sched("Mon-Sun 00:00-24:00 UTC").OpenUntil(at("2026-03-01T02:00:00Z")); !open || !closes.IsZero() {
		t.Errorf("always open: %v %v", open, closes)
	}
	// Sat 22:00-01:00 runs into Sun 00:00-02:00: open without a gap until Sun 02:00.
	chained := sched("Sat 22:00-01:00 UTC", "Sun 00:00-02:00 UTC")
	if open, closes := chained.OpenUntil(at("2026-02-28T23:00:00Z")); !open || !closes.Equal(at("2026-03-01T02:00:00Z")) {
		t.Errorf("chained: %v %v", open, closes)
	}
	if open, _ := chained.OpenUntil(at("2026-03-01T03:00:00Z")); open {
		t.Error("chained: open after it closed")
	}
	if open, closes := sched("Mon-Fri 02:00-04:00 UTC").OpenUntil(at("2026-03-02T03:00:00Z")); !open || !closes.Equal(at("2026-03-02T04:00:00Z")) {
		t.Errorf("one window: %v %v", open, closes)
	}
	if open, closes := (Schedule{}).OpenUntil(at("2026-03-02T03:00:00Z")); !open || !closes.IsZero() {
		t.Errorf("empty: %v %v", open, closes)
	}
}

func TestParseRefusesLongText(t *testing.T) {
	long := "Mon-Fri 02:00-04:00 " + strings.Repeat("x", MaxLen)
	_, err := Parse(long)
	if !errors.Is(err, errkind.InvalidArgument) || !strings.Contains(err.Error(), "longer than") || len(err.Error()) > 200 {
		t.Fatalf("Parse(%d bytes) = %v, want a short InvalidArgument", len(long), err)
	}
}
