package appspec

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/pkg/errkind"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		wantErr string
		check   func(t *testing.T, s *Spec)
	}{
		{name: "full", yaml: `
name: hello
build: {command: go build -o bin/hello ., output: ., timeout: 2m}
run: {command: bin/hello, health: "http://127.0.0.1:${PORT}/healthz", stop_grace: 3s}
migrations: db/migrations
`, check: func(t *testing.T, s *Spec) {
			if s.Build.Timeout != 2*time.Minute || s.StopGrace() != 3*time.Second || s.HealthTimeout() != DefaultHealthTimeout {
				t.Errorf("durations: %+v", s)
			}
			if got := s.Expand(map[string]string{"PORT": "8080"}, s.Run.Health); got != "http://127.0.0.1:8080/healthz" {
				t.Errorf("Expand = %q", got)
			}
			if s.OutputDir() != "." {
				t.Errorf("OutputDir = %q", s.OutputDir())
			}
		}},
		{name: "minimal", yaml: "name: a\nrun: {command: ./a}\n", check: func(t *testing.T, s *Spec) {
			if s.OutputDir() != "." || s.StopGrace() != DefaultStopGrace {
				t.Errorf("defaults: %+v", s)
			}
		}},
		{name: "typo", yaml: "name: a\nrun: {comand: ./a}\n", wantErr: "comand"},
		{name: "bad name", yaml: "name: Hello_World\nrun: {command: x}\n", wantErr: "not a valid name"},
		{name: "no run", yaml: "name: a\n", wantErr: "run.command is required"},
		{name: "output escapes", yaml: "name: a\nbuild: {output: ../x}\nrun: {command: x}\n", wantErr: "must stay inside"},
		{name: "absolute migrations", yaml: "name: a\nmigrations: /etc\nrun: {command: x}\n", wantErr: "relative path"},
		{name: "negative", yaml: "name: a\nrun: {command: x, stop_grace: -1s}\n", wantErr: "negative"},
		{name: "empty", yaml: "", wantErr: "not a valid name"},
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

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(dir); !errors.Is(err, errkind.NotFound) {
		t.Fatalf("missing file: err = %v, want NotFound", err)
	}
	if err := os.WriteFile(filepath.Join(dir, FileName), []byte("name: web\nrun: {command: ./web}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := Load(dir)
	if err != nil || s.Name != "web" {
		t.Fatalf("Load = %+v, %v", s, err)
	}
}

func TestValidName(t *testing.T) {
	for name, ok := range map[string]bool{
		"production": true, "a": true, "fe-1": true, "0x": true,
		"": false, "-a": false, "a-": false, "A": false, "a_b": false, "a.b": false, strings.Repeat("a", 64): false,
	} {
		if err := ValidName(name); (err == nil) != ok {
			t.Errorf("ValidName(%q) = %v, want ok=%v", name, err, ok)
		}
	}
}
