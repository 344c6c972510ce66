package probe

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Report is what every front-end answered in one phase.
type Report struct {
	// Start and End bound the phase.
	Start, End time.Time
	// Targets are the front-ends' names, in the Config's order.
	Targets []string
	// Counts are theirs, by name.
	Counts map[string]Counts
}

// Requests, Refused and Failed sum the front-ends' counts.
func (r Report) Requests() int { return r.sum(func(c Counts) int { return c.Requests }) }

// Refused sums the refused connections of every front-end.
func (r Report) Refused() int { return r.sum(func(c Counts) int { return c.Refused }) }

// Failed sums the failed requests (refused not included) of every front-end.
func (r Report) Failed() int { return r.sum(func(c Counts) int { return c.Failed }) }

// Answers sums the answers of version over every front-end.
func (r Report) Answers(version string) int {
	return r.sum(func(c Counts) int {
		if s := c.Versions[version]; s != nil {
			return s.Answers
		}
		return 0
	})
}

func (r Report) sum(f func(Counts) int) int {
	n := 0
	for _, c := range r.Counts {
		n += f(c)
	}
	return n
}

// Versions returns every version that answered, sorted.
func (r Report) Versions() []string {
	var vs []string
	for _, c := range r.Counts {
		for v := range c.Versions {
			if !slices.Contains(vs, v) {
				vs = append(vs, v)
			}
		}
	}
	slices.Sort(vs)
	return vs
}

// LongestGap is the longest time any front-end went without a 2xx answer.
func (r Report) LongestGap() time.Duration {
	var d time.Duration
	for _, c := range r.Counts {
		d = max(d, c.LongestGap)
	}
	return d
}

// LongestRefusedWindow is the longest refused window of any front-end.
func (r Report) LongestRefusedWindow() time.Duration {
	var d time.Duration
	for _, c := range r.Counts {
		d = max(d, c.RefusedWindow())
	}
	return d
}

// Table renders the report, one line per front-end: requests, refused,
// failed, refused window, longest gap without an answer, and per version
// its answers and when it answered first and last (ms from the phase's
// start); then a few error messages.
func (r Report) Table() string {
	var b strings.Builder
	fmt.Fprintf(&b, "probe over %s:\n", r.End.Sub(r.Start).Round(time.Millisecond))
	ms := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return fmt.Sprintf("%d", t.Sub(r.Start).Milliseconds())
	}
	for _, name := range r.Targets {
		c := r.Counts[name]
		fmt.Fprintf(&b, "  %-8s requests %6d  refused %4d  failed %4d  refused window %6s  longest gap %7s ",
			name, c.Requests, c.Refused, c.Failed, c.RefusedWindow().Round(time.Millisecond), c.LongestGap.Round(time.Millisecond))
		vs := make([]string, 0, len(c.Versions))
		for v := range c.Versions {
			vs = append(vs, v)
		}
		slices.Sort(vs)
		for _, v := range vs {
			s := c.Versions[v]
			fmt.Fprintf(&b, " %s=%d (ms %s..%s)", v, s.Answers, ms(s.First), ms(s.Last))
		}
		b.WriteString("\n")
		for _, e := range c.Errors {
			fmt.Fprintf(&b, "           error: %s\n", e)
		}
	}
	return b.String()
}
