// Package window parses deployment windows and answers whether one is open
// at a given time and when the next one opens.
//
// A window is written as days, a local time range and an IANA time zone:
//
//	Mon-Fri 02:00-04:00 Europe/Lisbon
//	Sat,Sun 22:00-01:00 UTC        (crosses midnight: ends at 01:00 the next day)
//	Mon,Wed-Fri 00:00-24:00 America/New_York
//
// The days are those on which a window opens. Times are wall-clock times in
// the zone, so a window keeps its local hours across daylight-saving changes;
// a start that falls in a spring-forward gap opens when the clock skips past
// it. Time zones come from Go's embedded tz database: no host files needed.
package window

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // embedded tz database: works on hosts without /usr/share/zoneinfo

	"github.com/cutover-dev/cutover/pkg/errkind"
)

var dayNames = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

// Window is one parsed deployment window.
type Window struct {
	days  [7]bool
	start int // minutes after local midnight
	end   int // minutes after local midnight, 0..1440; end <= start crosses midnight
	loc   *time.Location
	text  string
}

// Parse parses a window such as "Mon-Fri 02:00-04:00 Europe/Lisbon". Errors
// are errkind.InvalidArgument and say what is wrong.
func Parse(s string) (Window, error) {
	if len(s) > MaxLen {
		return Window{}, invalid(s, fmt.Sprintf("longer than %d bytes", MaxLen))
	}
	w := Window{text: strings.Join(strings.Fields(s), " ")}
	fields := strings.Fields(s)
	if len(fields) != 3 {
		return w, invalid(s, "want three parts: days, time range, time zone (e.g. \"Mon-Fri 02:00-04:00 Europe/Lisbon\")")
	}
	if err := w.parseDays(fields[0]); err != nil {
		return w, invalid(s, err.Error())
	}
	from, to, ok := strings.Cut(fields[1], "-")
	if !ok {
		return w, invalid(s, fmt.Sprintf("time range %q: want HH:MM-HH:MM", fields[1]))
	}
	var err error
	if w.start, err = parseClock(from, false); err != nil {
		return w, invalid(s, err.Error())
	}
	if w.end, err = parseClock(to, true); err != nil {
		return w, invalid(s, err.Error())
	}
	if w.start == w.end {
		return w, invalid(s, "the window opens and closes at the same time; use 00:00-24:00 for a whole day")
	}
	if w.loc, err = time.LoadLocation(fields[2]); err != nil || fields[2] == "Local" || fields[2] == "" {
		return w, invalid(s, fmt.Sprintf("unknown time zone %q: use an IANA name such as Europe/Lisbon or UTC", fields[2]))
	}
	return w, nil
}

// MaxLen bounds a window's text (the longest sensible one, with a list of
// days and a long zone name, is under 100 bytes).
const MaxLen = 256

func invalid(s, why string) error {
	if len(s) > MaxLen { // quote the start only: errors end up in logs and audit entries
		s = strings.ToValidUTF8(s[:64], "") + "…"
	}
	return fmt.Errorf("deployment window %q: %s: %w", s, why, errkind.InvalidArgument)
}

func (w *Window) parseDays(s string) error {
	for _, part := range strings.Split(s, ",") {
		from, to, isRange := strings.Cut(part, "-")
		a, ok := dayNames[strings.ToLower(from)]
		if !ok {
			return fmt.Errorf("unknown day %q: use Mon, Tue, Wed, Thu, Fri, Sat, Sun, ranges like Mon-Fri and lists like Sat,Sun", from)
		}
		b := a
		if isRange {
			if b, ok = dayNames[strings.ToLower(to)]; !ok {
				return fmt.Errorf("unknown day %q: use Mon, Tue, Wed, Thu, Fri, Sat, Sun", to)
			}
		}
		for d := a; ; d = (d + 1) % 7 {
			w.days[d] = true
			if d == b {
				break
			}
		}
	}
	return nil
}

func parseClock(s string, isEnd bool) (int, error) {
	hh, mm, ok := strings.Cut(s, ":")
	h, err1 := strconv.Atoi(hh)
	m, err2 := strconv.Atoi(mm)
	if !ok || err1 != nil || err2 != nil || len(hh) != 2 || len(mm) != 2 || m < 0 || m > 59 || h < 0 || h > 24 || (h == 24 && (m != 0 || !isEnd)) {
		return 0, fmt.Errorf("time %q: want HH:MM between 00:00 and 23:59 (24:00 allowed as an end)", s)
	}
	return h*60 + m, nil
}

// String returns the window in its canonical written form.
func (w Window) String() string { return w.text }

// Location returns the window's time zone.
func (w Window) Location() *time.Location { return w.loc }

// occurrence returns the opening and closing of the window that opens on the
// local date of day (in w's zone), and whether one opens that day.
func (w Window) occurrence(day time.Time) (open, close time.Time, ok bool) {
	y, mo, d := day.In(w.loc).Date()
	date := time.Date(y, mo, d, 0, 0, 0, 0, w.loc)
	if !w.days[date.Weekday()] {
		return time.Time{}, time.Time{}, false
	}
	open = time.Date(y, mo, d, w.start/60, w.start%60, 0, 0, w.loc)
	endDay := d
	if w.end <= w.start {
		endDay++
	}
	close = time.Date(y, mo, endDay, w.end/60, w.end%60, 0, 0, w.loc)
	return open, close, true
}

// around calls f with each occurrence that could contain or follow t within a week.
func (w Window) around(t time.Time, f func(open, close time.Time)) {
	local := t.In(w.loc)
	for i := -1; i <= 8; i++ {
		y, mo, d := local.Date()
		if open, close, ok := w.occurrence(time.Date(y, mo, d+i, 12, 0, 0, 0, w.loc)); ok {
			f(open, close)
		}
	}
}

// Schedule is an environment's set of windows. An empty schedule is always open.
type Schedule []Window

// ParseAll parses every window; the first error wins.
func ParseAll(texts []string) (Schedule, error) {
	s := make(Schedule, 0, len(texts))
	for _, text := range texts {
		w, err := Parse(text)
		if err != nil {
			return nil, err
		}
		s = append(s, w)
	}
	return s, nil
}

// Strings returns the canonical text of every window.
func (s Schedule) Strings() []string {
	out := make([]string, len(s))
	for i, w := range s {
		out[i] = w.String()
	}
	return out
}

// Open reports whether a window is open at t and, if so, when the latest
// closing of the windows open at t is (zero for an empty schedule).
func (s Schedule) Open(t time.Time) (open bool, closes time.Time) {
	if len(s) == 0 {
		return true, time.Time{}
	}
	for _, w := range s {
		w.around(t, func(o, c time.Time) {
			if !t.Before(o) && t.Before(c) {
				open = true
				if c.After(closes) {
					closes = c
				}
			}
		})
	}
	return open, closes
}

// horizon bounds OpenUntil's search: windows repeat weekly, so a week and
// a day sees every pattern.
const horizon = 8 * 24 * time.Hour

// OpenUntil reports whether a window is open at t and until when it stays
// open without a gap, following windows that open as another closes (for
// example each day's 00:00-24:00, or a window that runs into the next). The
// zero closing time means it does not close within eight days (or the
// schedule is empty: always open).
func (s Schedule) OpenUntil(t time.Time) (bool, time.Time) {
	open, closes := s.Open(t)
	if !open || closes.IsZero() {
		return open, closes
	}
	for closes.Sub(t) <= horizon {
		still, later := s.Open(closes)
		if !still || !later.After(closes) {
			return true, closes
		}
		closes = later
	}
	return true, time.Time{}
}

// Opening is one future opening of a window.
type Opening struct {
	// Open and Close bound the occurrence.
	Open, Close time.Time
	// Window is the window that opens.
	Window Window
}

// Next returns the first opening strictly after t, and false when the
// schedule is empty.
func (s Schedule) Next(t time.Time) (Opening, bool) {
	var best Opening
	found := false
	for _, w := range s {
		w.around(t, func(o, c time.Time) {
			if o.After(t) && (!found || o.Before(best.Open)) {
				best, found = Opening{Open: o, Close: c, Window: w}, true
			}
		})
	}
	return best, found
}

// Describe says when an opening happens, in the window's zone and in UTC,
// e.g. "Mon 2026-11-30 02:00 WET (02:00 UTC), window \"Mon-Fri 02:00-04:00 Europe/Lisbon\"".
func (o Opening) Describe() string {
	local := o.Open.In(o.Window.loc)
	return fmt.Sprintf("%s (%s UTC), window %q", local.Format("Mon 2006-01-02 15:04 MST"), o.Open.UTC().Format("2006-01-02 15:04"), o.Window.String())
}
