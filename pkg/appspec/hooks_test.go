package appspec

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/pkg/errkind"
)

func TestParseHooks(t *testing.T) {
	const head = "name: a\nrun: {command: x}\n"
	tests := []struct {
		name    string
		yaml    string
		wantErr string
		check   func(t *testing.T, s *Spec)
	}{
		{name: "all kinds", yaml: head + `hooks:
  before_activate:
    - {command: bin/console scheduler:suspend, timeout: 2m, on: once, labels: {role: scheduler}}
  validate: [{command: bin/smoke}]
  after_activate: [{command: bin/console scheduler:resume, on: each}]
`, check: func(t *testing.T, s *Spec) {
			b := s.Hooks.BeforeActivate[0]
			if b.TimeoutOrDefault() != 2*time.Minute || !b.Once() || !b.Matches(map[string]string{"role": "scheduler", "x": "y"}) || b.Matches(map[string]string{"role": "web"}) {
				t.Errorf("before_activate: %+v", b)
			}
			v := s.Hooks.Of(Validate)[0]
			if v.TimeoutOrDefault() != DefaultHookTimeout || v.Once() || !v.Matches(nil) {
				t.Errorf("validate: %+v", v)
			}
			if len(s.Hooks.Of(AfterActivate)) != 1 || s.Hooks.Empty() {
				t.Errorf("after_activate: %+v", s.Hooks)
			}
		}},
		{name: "none", yaml: head, check: func(t *testing.T, s *Spec) {
			if !s.Hooks.Empty() || s.Package != nil {
				t.Errorf("hooks %+v package %+v", s.Hooks, s.Package)
			}
		}},
		{name: "no command", yaml: head + "hooks: {validate: [{timeout: 1s}]}\n", wantErr: "hooks.validate[0]: command is required"},
		{name: "bad on", yaml: head + "hooks: {after_activate: [{command: x, on: all}]}\n", wantErr: `on is "all"`},
		{name: "negative timeout", yaml: head + "hooks: {before_activate: [{command: x, timeout: -1s}]}\n", wantErr: "timeout must not be negative"},
		{name: "empty label", yaml: head + "hooks: {before_activate: [{command: x, labels: {role: ''}}]}\n", wantErr: "non-empty key and value"},
		{name: "unknown kind", yaml: head + "hooks: {before_swap: [{command: x}]}\n", wantErr: "before_swap"},
		{name: "package", yaml: head + "package: {command: make apk, when_changed: [mobile/**, '*.json'], output: out/app.apk}\n", check: func(t *testing.T, s *Spec) {
			p := s.Package
			for name, want := range map[string]bool{"mobile/a/b.js": true, "mobile": true, "mobilex/a": false, "app.json": true, "x/app.json": false, "main.go": false} {
				if got := p.MatchesChanged(name); got != want {
					t.Errorf("MatchesChanged(%q) = %v, want %v", name, got, want)
				}
			}
		}},
		{name: "package without globs", yaml: head + "package: {command: x, output: a.apk}\n", wantErr: "when_changed needs at least one glob"},
		{name: "package without output", yaml: head + "package: {command: x, when_changed: ['*']}\n", wantErr: "package.output is required"},
		{name: "package output escapes", yaml: head + "package: {command: x, when_changed: ['*'], output: ../a.apk}\n", wantErr: "must stay inside"},
		{name: "package bad glob", yaml: head + "package: {command: x, when_changed: ['[a'], output: a.apk}\n", wantErr: "syntax error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse([]byte(tt.yaml))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, errkind.InvalidArgument) {
					t.Fatalf("err = %v, want InvalidArgument containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, s)
		})
	}
}
