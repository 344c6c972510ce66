package migrate

import (
	"errors"
	"testing"
	"testing/fstest"

	"github.com/cutover-dev/cutover/pkg/errkind"
)

func TestLoadPhasesAndDowns(t *testing.T) {
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	type want struct {
		name         string
		contract     bool
		down         string // the down file's name; "" for none
		irreversible bool
		reversible   bool
	}
	cases := []struct {
		name  string
		fsys  fstest.MapFS
		files []want
	}{
		{
			name: "expand with down, contract without",
			fsys: fstest.MapFS{
				"0001_add.up.sql":          file("ALTER TABLE t ADD COLUMN b TEXT;"),
				"0001_add.down.sql":        file("ALTER TABLE t DROP COLUMN b;"),
				"0002_drop.contract.sql":   file("ALTER TABLE t DROP COLUMN a;"),
				"0003_other.up.sql":        file("SELECT 1;"),
				"0003_other.down.sql":      file(NoTransactionMarker + "\nSELECT 1;"),
				"0004_marked.up.sql":       file("SELECT 1;\n  " + IrreversibleMarker + "  \n"),
				"0004_marked.down.sql":     file("SELECT 2;"),
				"0005_downmarked.up.sql":   file("SELECT 1;"),
				"0005_downmarked.down.sql": file(IrreversibleMarker + "\nSELECT 2;"),
			},
			files: []want{
				{name: "0001_add.up.sql", down: "0001_add.down.sql", reversible: true},
				{name: "0002_drop.contract.sql", contract: true},
				{name: "0003_other.up.sql", down: "0003_other.down.sql", reversible: true},
				{name: "0004_marked.up.sql", down: "0004_marked.down.sql", irreversible: true},
				{name: "0005_downmarked.up.sql", down: "0005_downmarked.down.sql", irreversible: true},
			},
		},
		{
			name: "contract with down",
			fsys: fstest.MapFS{
				"0007_c.contract.sql": file("SELECT 1;"),
				"0007_c.down.sql":     file("SELECT 2;"),
			},
			files: []want{{name: "0007_c.contract.sql", contract: true, down: "0007_c.down.sql", reversible: true}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			files, err := Load(tc.fsys)
			if err != nil {
				t.Fatal(err)
			}
			if len(files) != len(tc.files) {
				t.Fatalf("got %d files, want %d", len(files), len(tc.files))
			}
			for i, f := range files {
				w := tc.files[i]
				down := ""
				if f.Down != nil {
					down = f.Down.Name
					if f.Down.SQL != string(tc.fsys[down].Data) {
						t.Errorf("%s: down content wrong", f.Name)
					}
				}
				if f.Name != w.name || f.Contract != w.contract || down != w.down || f.Irreversible != w.irreversible || f.Reversible() != w.reversible {
					t.Errorf("file %d = %s contract=%v down=%q irreversible=%v reversible=%v, want %+v",
						i, f.Name, f.Contract, down, f.Irreversible, f.Reversible(), w)
				}
			}
			if f := files[len(files)-1]; f.Down != nil && f.Down.NoTransaction != (f.Name == "0003_other.up.sql") {
				t.Errorf("%s: down no-transaction marker misread", f.Name)
			}
		})
	}
}

func TestParseFileKinds(t *testing.T) {
	cases := []struct {
		name     string
		contract bool
		err      bool
	}{
		{name: "0001_a.up.sql"},
		{name: "0002_b.contract.sql", contract: true},
		{name: "0003_c.down.sql", err: true},
		{name: "0004_d.sql", err: true},
		{name: "0005_e.expand.sql", err: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, err := ParseFile(tc.name, []byte("SELECT 1;"))
			if tc.err {
				if !errors.Is(err, errkind.InvalidArgument) {
					t.Fatalf("want InvalidArgument, got %v", err)
				}
				return
			}
			if err != nil || f.Contract != tc.contract {
				t.Fatalf("ParseFile = %+v, %v", f, err)
			}
		})
	}
}
