package deployment

import (
	"io/fs"
	"reflect"
	"testing"

	"github.com/cutover-dev/cutover/pkg/appspec"
	"github.com/cutover-dev/cutover/pkg/manifest"
)

func TestChangedPaths(t *testing.T) {
	c := func(b byte) []manifest.ChunkRef { return []manifest.ChunkRef{{ID: manifest.ChunkID{b}, Size: 1}} }
	file := func(p string, b byte) manifest.File {
		return manifest.File{Path: p, Mode: 0o644, Size: 1, Chunks: c(b)}
	}
	dir := manifest.File{Path: "mobile", Mode: fs.ModeDir | 0o755}
	prev := &manifest.Manifest{Files: []manifest.File{dir, file("mobile/app.js", 1), file("mobile/old.js", 2), file("main.go", 3)}}
	pkg := &appspec.Package{Command: "x", WhenChanged: []string{"mobile/**"}, Output: "a.apk"}
	tests := []struct {
		name string
		prev *manifest.Manifest
		next []manifest.File
		want []string
	}{
		{name: "nothing changed", prev: prev, next: prev.Files},
		{name: "only a file outside the globs changed", prev: prev, next: []manifest.File{file("mobile/app.js", 1), file("mobile/old.js", 2), file("main.go", 9)}},
		{name: "content changed", prev: prev, next: []manifest.File{file("mobile/app.js", 7), file("mobile/old.js", 2), file("main.go", 3)}, want: []string{"mobile/app.js"}},
		{name: "mode changed", prev: prev, next: []manifest.File{{Path: "mobile/app.js", Mode: 0o755, Size: 1, Chunks: c(1)}, file("mobile/old.js", 2), file("main.go", 3)}, want: []string{"mobile/app.js"}},
		{name: "added and removed", prev: prev, next: []manifest.File{file("mobile/app.js", 1), file("mobile/new.js", 5), file("main.go", 3)}, want: []string{"mobile/new.js", "mobile/old.js"}},
		{name: "nothing ran before", prev: nil, next: prev.Files, want: []string{"mobile/app.js", "mobile/old.js"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := changedPaths(tt.prev, &manifest.Manifest{Files: tt.next}, pkg); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("changedPaths = %v, want %v", got, tt.want)
			}
		})
	}
}
