package migrate

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/cutover-dev/cutover/pkg/errkind"
)

func TestLoad(t *testing.T) {
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	cases := []struct {
		name     string
		fsys     fstest.MapFS
		versions []int64
		noTx     []bool
		errParts []string // non-empty: want InvalidArgument naming these
	}{
		{
			name: "sorted with gaps, other files ignored",
			fsys: fstest.MapFS{
				"0010_later.up.sql": file("SELECT 1;"),
				"0002_b.up.sql":     file("SELECT 1;"),
				"1_a.up.sql":        file(NoTransactionMarker + "\r\nCREATE INDEX CONCURRENTLY i ON t (x);"),
				"README.md":         file("not a migration"),
				"sub/0003_x.up.sql": file("ignored: in a subdirectory"),
			},
			versions: []int64{1, 2, 10},
			noTx:     []bool{true, false, false},
		},
		{
			name:     "marker only counts on the first line",
			fsys:     fstest.MapFS{"0001_a.up.sql": file("SELECT 1;\n" + NoTransactionMarker + "\n")},
			versions: []int64{1},
			noTx:     []bool{false},
		},
		{
			name:     "marker with surrounding blanks",
			fsys:     fstest.MapFS{"0001_a.up.sql": file("  " + NoTransactionMarker + "  \nVACUUM;")},
			versions: []int64{1},
			noTx:     []bool{true},
		},
		{
			name:     "empty dir",
			fsys:     fstest.MapFS{},
			versions: nil,
		},
		{
			name:     "duplicate versions name both files",
			fsys:     fstest.MapFS{"0001_a.up.sql": file("x"), "1_b.up.sql": file("y"), "0002_c.up.sql": file("z")},
			errParts: []string{`"0001_a.up.sql"`, `"1_b.up.sql"`, "same version 1"},
		},
		{
			name:     "down file without its up file refused",
			fsys:     fstest.MapFS{"0001_a.up.sql": file("x"), "0001_b.down.sql": file("y")},
			errParts: []string{`"0001_b.down.sql"`, "0001_b.up.sql", "0001_b.contract.sql"},
		},
		{
			name:     "no version",
			fsys:     fstest.MapFS{"create_users.sql": file("x")},
			errParts: []string{`"create_users.sql"`},
		},
		{
			name:     "zero version",
			fsys:     fstest.MapFS{"0000_a.up.sql": file("x")},
			errParts: []string{`"0000_a.up.sql"`},
		},
		{
			name:     "version too large",
			fsys:     fstest.MapFS{"99999999999999999999_a.up.sql": file("x")},
			errParts: []string{`"99999999999999999999_a.up.sql"`},
		},
		{
			name:     "empty name part",
			fsys:     fstest.MapFS{"0001_.up.sql": file("x")},
			errParts: []string{`"0001_.up.sql"`},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			files, err := Load(tc.fsys)
			if len(tc.errParts) > 0 {
				if !errors.Is(err, errkind.InvalidArgument) {
					t.Fatalf("want InvalidArgument, got %v", err)
				}
				mentions(t, err, tc.errParts...)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(files) != len(tc.versions) {
				t.Fatalf("got %d files, want %d", len(files), len(tc.versions))
			}
			for i, f := range files {
				if f.Version != tc.versions[i] || f.NoTransaction != tc.noTx[i] {
					t.Errorf("file %d = %s v%d noTx=%v, want v%d noTx=%v", i, f.Name, f.Version, f.NoTransaction, tc.versions[i], tc.noTx[i])
				}
				sum := sha256.Sum256(tc.fsys[f.Name].Data)
				if f.Checksum != hex.EncodeToString(sum[:]) || f.SQL != string(tc.fsys[f.Name].Data) {
					t.Errorf("%s: checksum or content wrong", f.Name)
				}
			}
		})
	}
}

func TestLoadDir(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{"0001_a.up.sql": "SELECT 1;", "0002_b.up.sql": "SELECT 2;"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	files, err := LoadDir(dir)
	if err != nil || len(files) != 2 || files[0].Name != "0001_a.up.sql" || files[1].Version != 2 {
		t.Fatalf("LoadDir = %+v, %v", files, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "2_dup.up.sql"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadDir(dir); !errors.Is(err, errkind.InvalidArgument) || !strings.Contains(err.Error(), dir) {
		t.Errorf("duplicate: want InvalidArgument naming the dir, got %v", err)
	}
	if _, err := LoadDir(filepath.Join(dir, "missing")); !errors.Is(err, errkind.InvalidArgument) {
		t.Errorf("missing dir: want InvalidArgument, got %v", err)
	}
}
