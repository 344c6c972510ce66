package localcluster

import (
	"os"
	"path/filepath"
	"testing"
)

func TestCopyApp(t *testing.T) {
	src, dst := t.TempDir(), filepath.Join(t.TempDir(), "app")
	files := map[string]os.FileMode{"main.go": 0o644, "run.sh": 0o755, "sub/x.txt": 0o600, "bin/old": 0o755}
	for name, mode := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(src, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, name), []byte(name), mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := CopyApp(src, dst, "v7"); err != nil {
		t.Fatal(err)
	}
	for name, mode := range files {
		info, err := os.Stat(filepath.Join(dst, name))
		if name == "bin/old" {
			if err == nil {
				t.Errorf("build output %s was copied", name)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if info.Mode().Perm() != mode {
			t.Errorf("%s: mode %s, want %s", name, info.Mode().Perm(), mode)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "VERSION")); string(b) != "v7\n" {
		t.Errorf("VERSION = %q, want v7", b)
	}
}
