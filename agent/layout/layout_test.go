package layout

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cutover-dev/cutover/pkg/errkind"
)

func TestValidRelease(t *testing.T) {
	id := strings.Repeat("0f", 32)
	tests := []struct {
		app, id string
		ok      bool
	}{
		{"hello", id, true},
		{"../hello", id, false},
		{"", id, false},
		{"hello", "../" + id[3:], false},
		{"hello", strings.ToUpper(id), false},
		{"hello", id[:63], false},
	}
	for _, tt := range tests {
		err := ValidRelease(tt.app, tt.id)
		if tt.ok != (err == nil) || (err != nil && !errors.Is(err, errkind.InvalidArgument)) {
			t.Errorf("ValidRelease(%q, %q) = %v", tt.app, tt.id, err)
		}
	}
}

func TestCurrent(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(AppDir(root, "a"), 0o755); err != nil {
		t.Fatal(err)
	}
	if id, err := Current(root, "a"); id != "" || err != nil {
		t.Errorf("no current: %q, %v", id, err)
	}
	for target, want := range map[string]string{"releases/r1": "r1", "releases/r2/": "r2", "/etc": "", "releases": "", "other/r1": ""} {
		_ = os.Remove(CurrentPath(root, "a"))
		if err := os.Symlink(target, CurrentPath(root, "a")); err != nil {
			t.Fatal(err)
		}
		id, err := Current(root, "a")
		if id != want || (want == "" && !errors.Is(err, errkind.FailedPrecondition)) {
			t.Errorf("current -> %q: %q, %v; want %q", target, id, err, want)
		}
	}
}

func TestMkdirAllSyncedAndApps(t *testing.T) {
	root := t.TempDir()
	if err := MkdirAllSynced(ReleasesDir(root, "b"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := MkdirAllSynced(filepath.Join(root, "a"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(root, ".hidden"), 0o755); err != nil {
		t.Fatal(err)
	}
	apps, err := Apps(root)
	if err != nil || strings.Join(apps, ",") != "a,b" {
		t.Errorf("Apps = %v, %v", apps, err)
	}
	if apps, err := Apps(filepath.Join(root, "missing")); err != nil || len(apps) != 0 {
		t.Errorf("Apps(missing) = %v, %v", apps, err)
	}
}
