package flagfile

import (
	"flag"
	"fmt"
	"strings"
)

// suggest returns `; did you mean "NAME"?` for the defined flag closest to
// name, or "" when none is close.
func suggest(fs *flag.FlagSet, name string) string {
	norm := strings.ToLower(strings.ReplaceAll(name, "_", "-"))
	best, bestD := "", -1
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name == ConfigFlag {
			return
		}
		d := distance(norm, f.Name)
		if bestD < 0 || d < bestD {
			best, bestD = f.Name, d
		}
	})
	limit := max(2, len(name)/3)
	if bestD < 0 || bestD > limit {
		return ""
	}
	return fmt.Sprintf("; did you mean %q?", best)
}

// distance is the Levenshtein distance between a and b, in bytes.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
