// Package bytesize reads sizes and rates written for people: a number of
// bytes with an optional binary unit ("64MiB", "512K", "1048576"), as the
// daemons' and tools' size flags take them.
package bytesize

import (
	"fmt"
	"strconv"
	"strings"
)

// units are the suffixes Parse understands, longest first so that "MiB"
// is not read as "M" followed by garbage.
var units = []struct {
	suffix string
	mult   int64
}{
	{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10},
	{"T", 1 << 40}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}, {"B", 1},
}

// Parse reads a non-negative size: digits, then optionally one of KiB,
// MiB, GiB, TiB (or K, M, G, T, also binary: 1K = 1024) or B. Errors say
// what was wrong and what is accepted.
func Parse(s string) (int64, error) {
	num, mult := strings.TrimSpace(s), int64(1)
	for _, u := range units {
		if rest, ok := strings.CutSuffix(num, u.suffix); ok {
			num, mult = strings.TrimSpace(rest), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("size %q: want a whole number of bytes, optionally with a unit (KiB, MiB, GiB, TiB; K, M, G, T are the same)", s)
	}
	if n > 0 && n > (1<<63-1)/mult {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return n * mult, nil
}

// Format writes n with the largest binary unit that divides it exactly,
// so that Parse(Format(n)) == n.
func Format(n int64) string {
	for _, u := range units[:4] {
		if n != 0 && n%u.mult == 0 {
			return strconv.FormatInt(n/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

// Flag is a flag.Value of a size in bytes (Parse's syntax).
type Flag int64

// String returns the size as Format writes it.
func (f *Flag) String() string { return Format(int64(*f)) }

// Set parses s.
func (f *Flag) Set(s string) error {
	n, err := Parse(s)
	if err != nil {
		return err
	}
	*f = Flag(n)
	return nil
}
