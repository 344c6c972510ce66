package e2e

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDemo runs cutover-demo as make demo does, so that the demo keeps
// working: it must exit 0 having seen v1 everywhere, v1 still after
// prepare with the SQL script shown and the table visits not created yet,
// and v2 everywhere after continue, with the table created and the SQL
// and swap timings printed.
func TestDemo(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*deployDeadline)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, bin("cutover-demo"), "-bin", binDir, "-app", filepath.Join("..", "examples", "hello"))
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("cutover-demo: %v\n%s", err, out.String())
	}
	text := out.String()
	for _, want := range []struct {
		text  string
		count int
	}{
		{" answers v1\n", 6},
		{" answers v2\n", 3},
		{"$ cutoverctl deploy prepare d-2 --wait\n", 1},
		{"$ cutoverctl deploy continue d-2 --wait\n", 1},
		{"$ cutoverctl deploy plan d-2\n", 1},
		{"CREATE TABLE visits (", 1},
		{" has no table visits yet (its tables: none)", 1},
		{" now has the table visits (its tables: cutover_schema_migrations, visits)", 1},
		{"Stage 2 (activate_time to finish_time) took ", 1},
		{" (sql_duration), swap ", 1},
		{"Done: every process stopped", 1},
	} {
		if got := strings.Count(text, want.text); got != want.count {
			t.Errorf("demo output holds %q %d times, want %d:\n%s", want.text, got, want.count, text)
		}
	}
}
