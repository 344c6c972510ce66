package stage

import (
	"errors"
	"io/fs"
	"testing"

	"github.com/cutover-dev/cutover/pkg/errkind"
	"github.com/cutover-dev/cutover/pkg/manifest"
)

func TestCheckManifest(t *testing.T) {
	dir := manifest.File{Path: "d", Mode: fs.ModeDir | 0o755}
	link := func(p, target string) manifest.File {
		return manifest.File{Path: p, Mode: fs.ModeSymlink | 0o777, Link: target}
	}
	tests := []struct {
		name  string
		files []manifest.File
		ok    bool
	}{
		{"plain", []manifest.File{dir, {Path: "d/f", Mode: 0o644}}, true},
		{"link inside", []manifest.File{dir, link("d/l", "../d")}, true},
		{"link to self dir", []manifest.File{link("here", ".")}, true},
		{"dot-dot path", []manifest.File{{Path: "../x", Mode: 0o644}}, false},
		{"absolute path", []manifest.File{{Path: "/etc/passwd", Mode: 0o644}}, false},
		{"absolute link", []manifest.File{link("l", "/etc")}, false},
		{"link outside", []manifest.File{dir, link("d/l", "../../x")}, false},
		// Lexically "d/d/d/../../.." is ".", but d -> "." makes it climb three levels.
		{"link escaping through another link", []manifest.File{link("d", "."), link("s", "d/d/d/../../..")}, false},
		{"link loop", []manifest.File{link("a", "b/x"), link("b", "a/y")}, false},
		{"file under a link", []manifest.File{link("l", "d"), dir, {Path: "l/f", Mode: 0o644}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkManifest(&manifest.Manifest{Application: "a", Files: tt.files})
			if tt.ok && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tt.ok && !errors.Is(err, errkind.InvalidArgument) {
				t.Fatalf("err = %v, want InvalidArgument", err)
			}
		})
	}
}
