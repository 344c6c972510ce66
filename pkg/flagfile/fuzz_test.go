package flagfile_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/cutover-dev/cutover/pkg/errkind"
	"github.com/cutover-dev/cutover/pkg/flagfile"
)

// FuzzLoad feeds Load arbitrary config files: it never panics, a refusal is
// errkind.InvalidArgument, a flag given on the command line keeps its value
// whatever the file says, and a file refused with "nothing was loaded"
// changed no flag.
func FuzzLoad(f *testing.F) {
	for _, s := range []string{
		"",
		"# nothing yet\n",
		"data-dir: /var/lib/cutover\nlisten: 0.0.0.0:7070\nverbose: true\ntimeout: 30s\ncount: 3\n",
		"env:\n  - PORT=8080\n  - A=B\nlabel: {role: scheduler, zone: a}\n",
		"label: [role=web]\nenv: PORT=1\n",
		"listen: x\ndata_dir: /x\n",
		"config: other.yaml\n",
		"count: many\ntimeout: [1s]\n",
		"count: 1\ncount: 2\n",
		"- a\n- b\n",
		"d: &d /x\ndata-dir: *d\n",
		"label: {? [a]: b}\n",
		"env: [~, {a: b}]\n",
		"listen:\n",
		"{",
	} {
		f.Add(s)
	}
	path := filepath.Join(f.TempDir(), "c.yaml")
	f.Fuzz(func(t *testing.T, file string) {
		if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
			t.Fatal(err)
		}
		fs, o := newFlagSet()
		if err := fs.Parse([]string{"--listen", "cli:1"}); err != nil {
			t.Fatal(err)
		}
		before := *o
		before.Label = mapFlag{}
		err := flagfile.Load(fs, path)
		if o.Listen != "cli:1" {
			t.Fatalf("file %q changed --listen, given on the command line, to %q (err %v)", file, o.Listen, err)
		}
		if err == nil {
			return
		}
		if !errors.Is(err, errkind.InvalidArgument) {
			t.Fatalf("Load(%q): error %v is not InvalidArgument", file, err)
		}
		if !strings.Contains(err.Error(), path) {
			t.Fatalf("Load(%q): error %v does not name the file", file, err)
		}
		if strings.Contains(err.Error(), "nothing was loaded") && !reflect.DeepEqual(*o, before) {
			t.Fatalf("Load(%q) says nothing was loaded, but flags changed: %+v, was %+v", file, *o, before)
		}
	})
}
