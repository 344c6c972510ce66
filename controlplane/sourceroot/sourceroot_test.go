package sourceroot

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/cutover-dev/cutover/pkg/errkind"
)

func TestCheck(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "sources")
	outside := filepath.Join(base, "elsewhere")
	for _, d := range []string{filepath.Join(root, "app"), outside, filepath.Join(base, "sourcesx")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(outside, filepath.Join(root, "escape")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(root, "app"), filepath.Join(base, "link-in")); err != nil {
		t.Fatal(err)
	}
	roots := Roots{root}
	tests := []struct {
		dir  string
		kind error
	}{
		{filepath.Join(root, "app"), nil},
		{root, nil},
		{filepath.Join(base, "link-in"), nil}, // a link from outside to inside: what counts is where it leads
		{outside, errkind.InvalidArgument},
		{filepath.Join(root, "escape"), errkind.InvalidArgument},
		{filepath.Join(root, "app", "..", "..", "elsewhere"), errkind.InvalidArgument},
		{filepath.Join(base, "sourcesx"), errkind.InvalidArgument}, // a prefix is not a parent
		{"relative/app", errkind.InvalidArgument},
		{filepath.Join(root, "missing"), errkind.NotFound},
		{"/", errkind.InvalidArgument},
	}
	for _, tt := range tests {
		_, err := roots.Check(tt.dir)
		if tt.kind == nil && err != nil || tt.kind != nil && !errors.Is(err, tt.kind) {
			t.Errorf("Check(%s) = %v, want %v", tt.dir, err, tt.kind)
		}
	}
}
