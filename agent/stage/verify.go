package stage

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/cutover-dev/cutover/pkg/errkind"
	"github.com/cutover-dev/cutover/pkg/manifest"
)

// Verify checks that dir holds exactly m: the same entries with the same
// types and permissions (the manifest's without write bits: staged
// releases are read-only), symlinks with the same targets, and regular files
// whose content hashes chunk by chunk to the manifest's chunk ids.
// Errors are errkind.DataLoss.
func Verify(dir string, m *manifest.Manifest) error { return verifyTree(dir, m, true) }

// verifyTree is Verify, with the files' contents checked only if content.
func verifyTree(dir string, m *manifest.Manifest, content bool) error {
	want := make(map[string]*manifest.File, len(m.Files))
	implicit := map[string]bool{}
	for i := range m.Files {
		want[m.Files[i].Path] = &m.Files[i]
		for p := path.Dir(m.Files[i].Path); p != "."; p = path.Dir(p) {
			implicit[p] = true
		}
	}
	seen := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == dir {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		f, ok := want[rel]
		if !ok {
			if d.IsDir() && implicit[rel] {
				return nil
			}
			return fmt.Errorf("%q is not in the manifest", rel)
		}
		seen++
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.Mode().Type() != f.Mode.Type() {
			return fmt.Errorf("%q is a %v, the manifest says %v", rel, info.Mode().Type(), f.Mode.Type())
		}
		switch f.Mode.Type() {
		case fs.ModeSymlink:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if link != f.Link {
				return fmt.Errorf("symlink %q points to %q, the manifest says %q", rel, link, f.Link)
			}
			return nil
		case 0:
			if info.Size() != f.Size {
				return fmt.Errorf("%q has %d bytes, the manifest says %d", rel, info.Size(), f.Size)
			}
			if content {
				if err := verifyContent(p, f); err != nil {
					return fmt.Errorf("%q: %w", rel, err)
				}
			}
		}
		if info.Mode().Perm() != readOnly(f.Mode) {
			return fmt.Errorf("%q has mode %v, want %v (the manifest's %v, read-only)", rel, info.Mode().Perm(), readOnly(f.Mode), f.Mode.Perm())
		}
		return nil
	})
	if err == nil && seen != len(want) {
		var lacking []string
		for p := range want {
			if _, err := os.Lstat(filepath.Join(dir, filepath.FromSlash(p))); err != nil {
				lacking = append(lacking, p)
			}
		}
		sort.Strings(lacking)
		err = fmt.Errorf("missing %s", strings.Join(lacking, ", "))
	}
	if err != nil {
		return fmt.Errorf("%s: %v: %w", dir, err, errkind.DataLoss)
	}
	return nil
}

func verifyContent(name string, f *manifest.File) error {
	in, err := os.Open(name)
	if err != nil {
		return err
	}
	defer in.Close()
	var buf bytes.Buffer
	var off int64
	for i, c := range f.Chunks {
		buf.Reset()
		if _, err := io.CopyN(&buf, in, c.Size); err != nil {
			return fmt.Errorf("chunk %d: %w", i, err)
		}
		if manifest.HashChunk(buf.Bytes()) != c.ID {
			return fmt.Errorf("chunk %d (bytes %d-%d) does not match its id %s", i, off, off+c.Size, c.ID)
		}
		off += c.Size
	}
	return nil
}
