package appspec

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cutover-dev/cutover/pkg/errkind"
)

// TestLimits: every limit of cutover.yaml refuses one byte (or one item)
// more than it allows, with InvalidArgument naming the field, and accepts
// exactly the limit.
func TestLimits(t *testing.T) {
	hooks := func(n int) string {
		return "hooks: {validate: [" + strings.TrimSuffix(strings.Repeat("{command: x},", n), ",") + "]}\n"
	}
	labels := func(n int) string {
		var ls []string
		for i := range n {
			ls = append(ls, fmt.Sprintf("l%d: v", i))
		}
		return "hooks: {validate: [{command: x, labels: {" + strings.Join(ls, ", ") + "}}]}\n"
	}
	globs := func(n int) string {
		return "package: {command: x, output: o, when_changed: [" + strings.TrimSuffix(strings.Repeat("a,", n), ",") + "]}\n"
	}
	base := "name: a\nrun: {command: x}\n"
	tests := []struct {
		name       string
		ok, tooBig string
		words      []string
	}{
		{"run.command", "name: a\nrun: {command: " + strings.Repeat("x", MaxCommandBytes) + "}\n",
			"name: a\nrun: {command: " + strings.Repeat("x", MaxCommandBytes+1) + "}\n", []string{"run.command", "16385 bytes"}},
		{"build.command", base + "build: {command: " + strings.Repeat("x", MaxCommandBytes) + "}\n",
			base + "build: {command: " + strings.Repeat("x", MaxCommandBytes+1) + "}\n", []string{"build.command"}},
		{"build.output", base + "build: {output: " + strings.Repeat("d", MaxPathBytes) + "}\n",
			base + "build: {output: " + strings.Repeat("d", MaxPathBytes+1) + "}\n", []string{"build.output"}},
		{"migrations", base + "migrations: " + strings.Repeat("d", MaxPathBytes) + "\n",
			base + "migrations: " + strings.Repeat("d", MaxPathBytes+1) + "\n", []string{"migrations"}},
		{"run.health", "name: a\nrun: {command: x, health: " + strings.Repeat("h", MaxURLBytes) + "}\n",
			"name: a\nrun: {command: x, health: " + strings.Repeat("h", MaxURLBytes+1) + "}\n", []string{"run.health"}},
		{"hook command", base + "hooks: {before_activate: [{command: " + strings.Repeat("x", MaxCommandBytes) + "}]}\n",
			base + "hooks: {before_activate: [{command: " + strings.Repeat("x", MaxCommandBytes+1) + "}]}\n", []string{"hooks.before_activate[0].command"}},
		{"hooks", base + hooks(MaxHooks), base + hooks(MaxHooks+1), []string{"hooks.validate", "33 hooks"}},
		{"labels", base + labels(MaxLabels), base + labels(MaxLabels+1), []string{"hooks.validate[0].labels", "17 labels"}},
		{"label value", base + "hooks: {validate: [{command: x, labels: {role: " + strings.Repeat("v", MaxLabelBytes) + "}}]}\n",
			base + "hooks: {validate: [{command: x, labels: {role: " + strings.Repeat("v", MaxLabelBytes+1) + "}}]}\n", []string{`labels["role"]`}},
		{"globs", base + globs(MaxGlobs), base + globs(MaxGlobs+1), []string{"package.when_changed", "65 globs"}},
		{"file", base + "# " + strings.Repeat("c", MaxFileBytes-len(base)-3) + "\n",
			base + "# " + strings.Repeat("c", MaxFileBytes-len(base)-2) + "\n", []string{FileName, "65536 bytes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Parse([]byte(tt.ok)); err != nil {
				t.Errorf("at the limit: %v", err)
			}
			_, err := Parse([]byte(tt.tooBig))
			if !errors.Is(err, errkind.InvalidArgument) {
				t.Fatalf("over the limit: err = %v, want InvalidArgument", err)
			}
			for _, w := range append(tt.words, "docs/limits.md") {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("over the limit: %q does not say %q", err, w)
				}
			}
		})
	}
}

// TestLoadHugeRunCommand: a cutover.yaml of 60 MB (its run.command) is
// refused as InvalidArgument, and Load reads no more than the limit.
func TestLoadHugeRunCommand(t *testing.T) {
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("name: huge\nrun:\n  command: "); err != nil {
		t.Fatal(err)
	}
	chunk := []byte(strings.Repeat("x", 1<<20))
	for range 60 {
		if _, err := f.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = Load(dir)
	if !errors.Is(err, errkind.InvalidArgument) || !strings.Contains(err.Error(), "larger than 65536 bytes") {
		t.Fatalf("Load = %v, want InvalidArgument: larger than 65536 bytes", err)
	}
	if len(err.Error()) > 1000 {
		t.Errorf("the error is %d bytes long; it must not quote the file", len(err.Error()))
	}
}

// TestNotText: a NUL byte or invalid UTF-8 in a field is refused: a command
// with a NUL cannot run, and the manifest (JSON) would alter invalid UTF-8.
func TestNotText(t *testing.T) {
	for _, y := range []string{
		"name: a\nrun: {command: \"a\\0b\"}\n",
		"name: a\nrun:\n  command: !!binary /w==\n", // 0xff
		"name: a\nrun: {command: x}\nhooks: {validate: [{command: x, labels: {\"r\\0\": v}}]}\n",
	} {
		if _, err := Parse([]byte(y)); !errors.Is(err, errkind.InvalidArgument) || !strings.Contains(err.Error(), "UTF-8") {
			t.Errorf("Parse(%q) = %v, want InvalidArgument: not UTF-8 text", y, err)
		}
	}
}
