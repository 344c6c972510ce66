package flagfile_test

import (
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/pkg/errkind"
	"github.com/cutover-dev/cutover/pkg/flagfile"
)

// listFlag is a repeatable flag that is not a flag.Getter, like --env.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

// mapFlag is a repeatable KEY=VALUE flag that is a flag.Getter returning a map,
// like --label.
type mapFlag map[string]string

func (m mapFlag) String() string { return "" }
func (m mapFlag) Get() any       { return map[string]string(m) }
func (m mapFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return errors.New("want KEY=VALUE")
	}
	m[k] = v
	return nil
}

type opts struct {
	DataDir string
	Listen  string
	Verbose bool
	Timeout time.Duration
	Count   int
	Config  string
	Env     listFlag
	Label   mapFlag
}

func newFlagSet() (*flag.FlagSet, *opts) {
	o := &opts{Label: mapFlag{}}
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.DataDir, "data-dir", "/default", "")
	fs.StringVar(&o.Listen, "listen", "127.0.0.1:7070", "")
	fs.BoolVar(&o.Verbose, "verbose", false, "")
	fs.DurationVar(&o.Timeout, "timeout", time.Second, "")
	fs.IntVar(&o.Count, "count", 1, "")
	fs.StringVar(&o.Config, "config", "", "")
	fs.Var(&o.Env, "env", "")
	fs.Var(o.Label, "label", "")
	return fs, o
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoad(t *testing.T) {
	defaults := opts{DataDir: "/default", Listen: "127.0.0.1:7070", Timeout: time.Second, Count: 1, Label: mapFlag{}}
	tests := []struct {
		name    string
		args    []string
		file    string
		want    opts     // compared when no error is wanted
		wantErr []string // substrings of the error; the file path is always checked too
		kind    error
	}{
		{
			name: "scalars set unset flags",
			file: "data-dir: /var/lib/cutover\nlisten: 0.0.0.0:7070\nverbose: true\ntimeout: 30s\ncount: 3\n",
			want: opts{DataDir: "/var/lib/cutover", Listen: "0.0.0.0:7070", Verbose: true, Timeout: 30 * time.Second, Count: 3, Label: mapFlag{}},
		},
		{
			name: "command line wins",
			args: []string{"--data-dir", "/cli", "--env", "X=1"},
			file: "data-dir: /file\nlisten: 0.0.0.0:1\nenv: [A=B]\n",
			want: opts{DataDir: "/cli", Listen: "0.0.0.0:1", Timeout: time.Second, Count: 1, Env: listFlag{"X=1"}, Label: mapFlag{}},
		},
		{
			name: "list for a repeatable flag",
			file: "env:\n  - PORT=8080\n  - A=B\n",
			want: func() opts { o := defaults; o.Env = listFlag{"PORT=8080", "A=B"}; return o }(),
		},
		{
			name: "map for a KEY=VALUE flag",
			file: "label: {role: scheduler, zone: a}\n",
			want: func() opts { o := defaults; o.Label = mapFlag{"role": "scheduler", "zone": "a"}; return o }(),
		},
		{
			name: "list for a KEY=VALUE flag",
			file: "label: [role=web]\n",
			want: func() opts { o := defaults; o.Label = mapFlag{"role": "web"}; return o }(),
		},
		{
			name: "single value as scalar for a repeatable flag",
			file: "env: PORT=1\n",
			want: func() opts { o := defaults; o.Env = listFlag{"PORT=1"}; return o }(),
		},
		{name: "empty file", file: "", want: defaults},
		{name: "only comments", file: "# nothing yet\n", want: defaults},
		{
			name:    "unknown key suggests the closest flag",
			file:    "listen: x\ndata_dir: /x\n",
			wantErr: []string{`line 2: unknown key "data_dir"; did you mean "data-dir"?`, "nothing was loaded"},
			kind:    errkind.InvalidArgument,
		},
		{
			name:    "unknown key far from any flag",
			file:    "colour: blue\n",
			wantErr: []string{`unknown key "colour"`},
			kind:    errkind.InvalidArgument,
		},
		{
			name:    "unknown key changes nothing",
			file:    "data-dir: /x\nlisen: y\n",
			wantErr: []string{`unknown key "lisen"; did you mean "listen"?`},
			kind:    errkind.InvalidArgument,
		},
		{
			name:    "every problem at once",
			file:    "count: many\ntimeout: soon\n",
			wantErr: []string{`line 1: key "count": value "many" refused: parse error (want a int)`, `line 2: key "timeout": value "soon" refused: parse error (want a time.Duration)`, "only partly applied"},
			kind:    errkind.InvalidArgument,
		},
		{
			name:    "bad value in a map",
			file:    "label: {\"\": x}\n",
			wantErr: []string{`key "label": value "=x" refused: want KEY=VALUE`},
			kind:    errkind.InvalidArgument,
		},
		{
			name:    "list for a single-value flag",
			file:    "listen: [a, b]\n",
			wantErr: []string{`key "listen": takes a single value, not a list`},
			kind:    errkind.InvalidArgument,
		},
		{
			name:    "map for a single-value flag",
			file:    "data-dir: {a: b}\n",
			wantErr: []string{`key "data-dir": takes a single value, not a map`},
			kind:    errkind.InvalidArgument,
		},
		{
			name:    "key without a value",
			file:    "data-dir:\n",
			wantErr: []string{`key "data-dir": has no value`},
			kind:    errkind.InvalidArgument,
		},
		{
			name:    "repeated key",
			file:    "listen: a\nlisten: b\n",
			wantErr: []string{`line 2: key "listen" is already set on line 1`},
			kind:    errkind.InvalidArgument,
		},
		{
			name:    "config key",
			file:    "config: other.yaml\n",
			wantErr: []string{`key "config" cannot be set from a config file`},
			kind:    errkind.InvalidArgument,
		},
		{
			name:    "top level not a map",
			file:    "- a\n- b\n",
			wantErr: []string{"the top level must be a map"},
			kind:    errkind.InvalidArgument,
		},
		{
			name:    "not YAML",
			file:    "listen: [unclosed\n",
			wantErr: []string{"is not valid YAML"},
			kind:    errkind.InvalidArgument,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs, o := newFlagSet()
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			path := writeFile(t, tt.file)
			err := flagfile.Load(fs, path)
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("Load: no error, want %q", tt.wantErr)
				}
				for _, w := range append(tt.wantErr, path) {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
				if !errors.Is(err, tt.kind) {
					t.Errorf("error %v is not %v", err, tt.kind)
				}
				if strings.Contains(err.Error(), "nothing was loaded") && o.DataDir != "/default" {
					t.Errorf("data-dir = %q after a refused file, want it unchanged", o.DataDir)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if !reflect.DeepEqual(*o, tt.want) {
				t.Errorf("flags = %+v\nwant    %+v", *o, tt.want)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	fs, _ := newFlagSet()
	path := filepath.Join(t.TempDir(), "absent.yaml")
	err := flagfile.Load(fs, path)
	if !errors.Is(err, errkind.NotFound) || !strings.Contains(err.Error(), path) {
		t.Fatalf("Load(missing) = %v, want NotFound naming %s", err, path)
	}
}

func TestParse(t *testing.T) {
	path := writeFile(t, "data-dir: /file\nlisten: file:1\n")
	tests := []struct {
		name        string
		args        []string
		wantDataDir string
		wantListen  string
		wantArgs    []string
	}{
		{name: "no config", args: []string{"--listen", "cli:1"}, wantDataDir: "/default", wantListen: "cli:1"},
		{name: "config loaded", args: []string{"--config", path}, wantDataDir: "/file", wantListen: "file:1"},
		{name: "flag after config wins", args: []string{"--config", path, "--listen", "cli:2", "rest"}, wantDataDir: "/file", wantListen: "cli:2", wantArgs: []string{"rest"}},
		{name: "flag before config wins", args: []string{"--data-dir", "/cli", "--config=" + path}, wantDataDir: "/cli", wantListen: "file:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs, o := newFlagSet()
			if err := flagfile.Parse(fs, tt.args); err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if o.DataDir != tt.wantDataDir || o.Listen != tt.wantListen {
				t.Errorf("data-dir, listen = %q, %q; want %q, %q", o.DataDir, o.Listen, tt.wantDataDir, tt.wantListen)
			}
			if got := fs.Args(); len(got) != len(tt.wantArgs) || (len(got) > 0 && !reflect.DeepEqual(got, tt.wantArgs)) {
				t.Errorf("remaining args = %q, want %q", got, tt.wantArgs)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	// A flag set without --config just parses.
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	v := fs.String("listen", "", "")
	if err := flagfile.Parse(fs, []string{"--listen", "a"}); err != nil || *v != "a" {
		t.Fatalf("Parse without --config: %v, listen=%q", err, *v)
	}
	// A parse error is returned as is.
	fs2, _ := newFlagSet()
	if err := flagfile.Parse(fs2, []string{"--nope"}); err == nil {
		t.Fatal("Parse(--nope): no error")
	}
	// A missing config file is an error.
	fs3, _ := newFlagSet()
	if err := flagfile.Parse(fs3, []string{"--config", filepath.Join(t.TempDir(), "no.yaml")}); !errors.Is(err, errkind.NotFound) {
		t.Fatalf("Parse(missing config) = %v, want NotFound", err)
	}
}
