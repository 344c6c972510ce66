package manifest

import (
	"errors"
	"io/fs"
	"testing"

	"github.com/cutover-dev/cutover/pkg/errkind"
)

func TestValidateLinks(t *testing.T) {
	dir := File{Path: "d", Mode: fs.ModeDir | 0o755}
	link := func(p, target string) File {
		return File{Path: p, Mode: fs.ModeSymlink | 0o777, Link: target}
	}
	tests := []struct {
		name  string
		files []File
		ok    bool
	}{
		{"plain", []File{dir, {Path: "d/f", Mode: 0o644}}, true},
		{"link inside", []File{dir, link("d/l", "../d")}, true},
		{"link to self dir", []File{link("here", ".")}, true},
		{"dot-dot path", []File{{Path: "../x", Mode: 0o644}}, false},
		{"absolute path", []File{{Path: "/etc/passwd", Mode: 0o644}}, false},
		{"absolute link", []File{link("l", "/etc")}, false},
		{"link outside", []File{dir, link("d/l", "../../x")}, false},
		// Lexically "d/d/d/../../.." is ".", but d -> "." makes it climb three levels.
		{"link escaping through another link", []File{link("d", "."), link("s", "d/d/d/../../..")}, false},
		{"link loop", []File{link("a", "b/x"), link("b", "a/y")}, false},
		{"file under a link", []File{link("l", "d"), dir, {Path: "l/f", Mode: 0o644}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := (&Manifest{Application: "a", Files: tt.files}).Validate()
			if tt.ok && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tt.ok && !errors.Is(err, errkind.InvalidArgument) {
				t.Fatalf("err = %v, want InvalidArgument", err)
			}
		})
	}
}
