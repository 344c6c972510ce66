package manifest

import (
	"bytes"
	"errors"
	"io/fs"
	"testing"

	"github.com/cutover-dev/cutover/pkg/appspec"
	"github.com/cutover-dev/cutover/pkg/errkind"
)

// FuzzDecode feeds Decode arbitrary manifests: it never panics, a refusal
// is errkind.InvalidArgument, and an accepted manifest's canonical
// encoding decodes again to the same encoding (and so the same release id).
func FuzzDecode(f *testing.F) {
	id := HashChunk([]byte("x")).String()
	seeds := []string{
		"",
		"{}",
		"null",
		`{"application":"a","spec":{"name":"a","build":{},"run":{"command":"x"}},"files":[]}`,
		`{"application":"a","spec":{},"files":[{"path":"b","mode":420,"size":1,"chunks":[{"id":"` + id + `","size":1}]},{"path":"a","mode":2147484141}]}`,
		`{"application":"a","spec":{},"files":[{"path":"d","mode":2147484141},{"path":"d/l","mode":134218239,"link":"../d"}]}`,
		`{"application":"a","spec":{},"files":[{"path":"l","mode":134218239,"link":"."},{"path":"s","mode":134218239,"link":"l/l/l/.."}]}`,
		`{"application":"a","spec":{},"files":[{"path":"a","mode":134218239,"link":"b"},{"path":"b","mode":134218239,"link":"a"}]}`,
		`{"application":"a","spec":{},"files":[{"path":"a","mode":420},{"path":"a","mode":420}]}`,
		`{"application":"a","spec":{},"files":[{"path":"../a","mode":420}]}`,
		`{"application":"a","spec":{},"files":[{"path":"a","mode":420,"size":-1}]}`,
		`{"application":"a","spec":{},"files":[{"path":"a","mode":420,"size":0,"chunks":[{"id":"zz","size":1}]}]}`,
		`{"application":"a","spec":{},"files":[],"extra":1}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	m := &Manifest{Application: "hello", Spec: appspec.Spec{Name: "hello", Run: appspec.Run{Command: "bin/hello"},
		Hooks: appspec.Hooks{Validate: []appspec.Hook{{Command: "t", Labels: map[string]string{"role": "web"}}}}},
		Files: []File{{Path: "bin", Mode: fs.ModeDir | 0o755}, {Path: "bin/hello", Mode: 0o755, Size: 3, Chunks: []ChunkRef{{ID: HashChunk([]byte("abc")), Size: 3}}},
			{Path: "current", Mode: fs.ModeSymlink | 0o777, Link: "bin/hello"}}}
	f.Add(m.Encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			if !errors.Is(err, errkind.InvalidArgument) {
				t.Fatalf("Decode(%q): error %v is not InvalidArgument", b, err)
			}
			return
		}
		enc := m.Encode()
		m2, err := Decode(enc)
		if err != nil {
			t.Fatalf("Decode(%q) accepted a manifest whose canonical encoding\n%s\nit refuses: %v", b, enc, err)
		}
		if enc2 := m2.Encode(); !bytes.Equal(enc, enc2) {
			t.Fatalf("canonical encoding of %q is not stable:\n%s\n%s", b, enc, enc2)
		}
		if m.ID() != m2.ID() || m.Size() != m2.Size() || len(m.ChunkIDs()) != len(m2.ChunkIDs()) {
			t.Fatalf("Decode(%q): id, size or chunks change across a round trip", b)
		}
		if m.Size() < 0 {
			t.Fatalf("Decode(%q): size %d", b, m.Size())
		}
	})
}
