package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/pkg/appspec"
	"github.com/cutover-dev/cutover/pkg/window"
)

func TestQuoteArgs(t *testing.T) {
	tests := []struct {
		in   []string
		want string
	}{
		{[]string{"env", "create", "demo"}, "env create demo"},
		{[]string{"--window", "Mon-Fri 02:00-04:00 UTC"}, "--window 'Mon-Fri 02:00-04:00 UTC'"},
		{[]string{""}, "''"},
		{[]string{"it's"}, `'it'\''s'`},
	}
	for _, tt := range tests {
		if got := quoteArgs(tt.in); got != tt.want {
			t.Errorf("quoteArgs(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestIndenter(t *testing.T) {
	var b bytes.Buffer
	in := &indenter{w: &b, prefix: "> "}
	for _, s := range []string{"one\ntw", "o\n", "three"} {
		if _, err := in.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	if got := b.String(); got != "> one\n> two\n" {
		t.Errorf("before flush: %q", got)
	}
	in.flush()
	if got := b.String(); got != "> one\n> two\n> three\n" {
		t.Errorf("after flush: %q", got)
	}
}

func TestDemoWindowIsOpenNow(t *testing.T) {
	for _, now := range []time.Time{
		time.Date(2026, 11, 26, 9, 30, 0, 0, time.UTC),
		time.Date(2026, 11, 26, 23, 59, 0, 0, time.UTC), // across midnight
		time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC),
	} {
		w := demoWindow(now)
		s, err := window.ParseAll([]string{w})
		if err != nil {
			t.Fatalf("%s: %v", w, err)
		}
		if open, _ := s.Open(now); !open {
			t.Errorf("window %q is not open at %s", w, now)
		}
	}
}

// TestDemoSpec: what the demo adds to examples/hello's cutover.yaml is a
// valid app spec: once hooks around the swap, a validate hook on each
// agent, and a package step on VERSION.
func TestDemoSpec(t *testing.T) {
	base, err := os.ReadFile(filepath.Join("..", "..", "examples", "hello", "cutover.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	spec, err := appspec.Parse(append(base, demoSpec("/tmp/demo/hooks.log")...))
	if err != nil {
		t.Fatalf("the demo's cutover.yaml: %v", err)
	}
	h := spec.Hooks
	if len(h.BeforeActivate) != 1 || !h.BeforeActivate[0].Once() || len(h.AfterActivate) != 1 || !h.AfterActivate[0].Once() ||
		len(h.Validate) != 1 || h.Validate[0].Once() || !strings.Contains(h.Validate[0].Command, ">> /tmp/demo/hooks.log") {
		t.Errorf("hooks = %+v", h)
	}
	if p := spec.Package; p == nil || !p.MatchesChanged("VERSION") || p.MatchesChanged("main.go") || p.Output != "out/hello.pkg" {
		t.Errorf("package = %+v", p)
	}
}

// TestCtlEnv: cutoverctl run by the demo sees the demo's token and none
// of the user's CUTOVER_* settings, which would win over it or send the
// user's token elsewhere.
func TestCtlEnv(t *testing.T) {
	t.Setenv("CUTOVER_TOKEN", "cutover.users-own")
	t.Setenv("CUTOVER_CA_FILE", "/home/user/ca.crt")
	d := &demo{dir: "/tmp/demo"}
	env := strings.Join(d.ctlEnv("/tmp/demo/deployer.token"), "\n") + "\n"
	for _, bad := range []string{"CUTOVER_TOKEN=", "CUTOVER_CA_FILE=/home/user"} {
		if strings.Contains(env, bad) {
			t.Errorf("cutoverctl's environment holds %s", bad)
		}
	}
	for _, want := range []string{"CUTOVER_TOKEN_FILE=/tmp/demo/deployer.token\n", "CUTOVER_CONFIG=/tmp/demo/"} {
		if !strings.Contains(env, want) {
			t.Errorf("cutoverctl's environment lacks %s", want)
		}
	}
	if env := strings.Join(d.ctlEnv(noToken), "\n"); strings.Contains(env, "CUTOVER_TOKEN") {
		t.Errorf("without a token, cutoverctl's environment still holds one: %s", env)
	}
}
