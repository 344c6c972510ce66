package appspec

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/cutover-dev/cutover/pkg/errkind"
)

// FuzzParse feeds Parse arbitrary cutover.yaml files: it never panics, every
// refusal is errkind.InvalidArgument, and a spec it accepts survives the two
// encodings it travels in (YAML, and JSON inside a release's manifest):
// written back, it parses again to the same spec.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"",
		"name: a\nrun: {command: ./a}\n",
		`name: hello
build:
  command: go build -o bin/hello .
  output: .
  timeout: 10m
run:
  command: bin/hello
  health: "http://127.0.0.1:${PORT}/healthz"
  stop_grace: 3s
  health_timeout: 15s
migrations: db/migrations
`,
		`name: shop
run: {command: bin/shop}
hooks:
  before_activate:
    - {command: bin/console scheduler:suspend, timeout: 5m, on: once, labels: {role: scheduler}}
  validate: [{command: bin/smoke-test}]
  after_activate: [{command: bin/console scheduler:resume, on: once, labels: {role: scheduler}}]
package:
  command: make apk
  when_changed: [mobile/**, "*.go"]
  output: out/app.apk
`,
		"name: a\nrun: {comand: ./a}\n",
		"name: a\nbuild: {output: ../x}\nrun: {command: x}\n",
		"name: a\nrun: {command: x, stop_grace: -1s}\n",
		"name: &n a\nrun: {command: *n}\n",
		"a: &a [*a, *a]\n",
		"name: a\nrun: {command: x}\npackage: {command: y, when_changed: ['[', ], output: o}\n",
		"name: a\nrun: {command: x}\n---\nname: b\n",
		"name: a\nrun:\n  command: !!binary aGVsbG8=\n",
		"{name: a, run: {command: x}, hooks: {validate: [{command: y, labels: {'': v}}]}}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Parse(b)
		if err != nil {
			if !errors.Is(err, errkind.InvalidArgument) {
				t.Fatalf("Parse(%q): error %v is not InvalidArgument", b, err)
			}
			return
		}
		if s.Validate() != nil {
			t.Fatalf("Parse(%q) accepted a spec that Validate refuses: %v", b, s.Validate())
		}

		y, err := yaml.Marshal(s)
		if err != nil {
			t.Fatalf("Parse(%q) = %+v, which yaml.Marshal refuses: %v", b, s, err)
		}
		s2, err := Parse(y)
		if err != nil {
			t.Fatalf("Parse(%q) = %+v, written as\n%s\nwhich Parse refuses: %v", b, s, y, err)
		}
		y2, err := yaml.Marshal(s2)
		if err != nil || !bytes.Equal(y, y2) {
			t.Fatalf("YAML round trip of %q:\n%s\nbecame\n%s(%v)", b, y, y2, err)
		}

		j, err := json.Marshal(s)
		if err != nil {
			t.Fatalf("json.Marshal(%+v): %v", s, err)
		}
		var s3 Spec
		if err := json.Unmarshal(j, &s3); err != nil {
			t.Fatalf("json.Unmarshal(%s): %v", j, err)
		}
		if err := s3.Validate(); err != nil {
			t.Fatalf("spec %s, valid as YAML, is refused after a JSON round trip: %v", j, err)
		}
		if !reflect.DeepEqual(normalized(*s), normalized(s3)) {
			t.Fatalf("JSON round trip of %q:\n%+v\nbecame\n%+v", b, *s, s3)
		}
	})
}

// normalized returns s with empty lists and maps as nil: encodings may drop
// them (omitempty), which changes nothing a spec means.
func normalized(s Spec) Spec {
	hooks := func(hs []Hook) []Hook {
		if len(hs) == 0 {
			return nil
		}
		out := append([]Hook(nil), hs...)
		for i := range out {
			if len(out[i].Labels) == 0 {
				out[i].Labels = nil
			}
		}
		return out
	}
	s.Hooks = Hooks{BeforeActivate: hooks(s.Hooks.BeforeActivate), AfterActivate: hooks(s.Hooks.AfterActivate), Validate: hooks(s.Hooks.Validate)}
	if s.Package != nil {
		p := *s.Package
		if len(p.WhenChanged) == 0 {
			p.WhenChanged = nil
		}
		s.Package = &p
	}
	return s
}
