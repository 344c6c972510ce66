package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

func TestExitStatus(t *testing.T) {
	dirs := []string{"--data-dir", t.TempDir(), "--root", t.TempDir()}
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"help", []string{"-h"}, 0, "-environment string"},
		{"typo", []string{"--enviroment", "prod"}, 2, "flag provided but not defined: -enviroment"},
		{"malformed env", []string{"--env", "PORT"}, 2, `"PORT" is not KEY=VALUE`},
		{"missing environment", dirs, 2, "--environment is required"},
		{"bad log level", append([]string{"--environment", "prod", "--log-level", "loud"}, dirs...), 2, "loud"},
		{"stray argument", []string{"--environment", "prod", "extra"}, 2, "unexpected arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			if code := run(tt.args, &out); code != tt.code {
				t.Errorf("exit %d, want %d; output:\n%s", code, tt.code, out.String())
			}
			if !strings.Contains(out.String(), tt.want) {
				t.Errorf("output lacks %q:\n%s", tt.want, out.String())
			}
		})
	}
}

func TestFlagsFillConfig(t *testing.T) {
	var out bytes.Buffer
	cfg, level, format, err := parseFlags([]string{"--environment", "prod", "--name", "fe-1", "--env", "PORT=8080",
		"--env", "DSN=a=b", "--label", "role=web", "--log-format", "json", "--stage-rate", "52428800"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Environment != "prod" || cfg.Name != "fe-1" || cfg.Env["PORT"] != "8080" || cfg.Env["DSN"] != "a=b" ||
		cfg.Labels["role"] != "web" || cfg.Controller != "127.0.0.1:7070" || level != "info" || format != "json" || cfg.StageRate != 50<<20 {
		t.Errorf("cfg = %+v, level %q, format %q", cfg, level, format)
	}
}

func TestConfigFile(t *testing.T) {
	file := t.TempDir() + "/agent.yaml"
	yaml := "environment: prod\nenv: [PORT=8080, MODE=a=b]\nlabel: {role: web}\nname: fe-2\n"
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cfg, _, _, err := parseFlags([]string{"--config", file, "--name", "fe-1"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Environment != "prod" || cfg.Name != "fe-1" || cfg.Env["PORT"] != "8080" || cfg.Env["MODE"] != "a=b" || cfg.Labels["role"] != "web" {
		t.Errorf("cfg = %+v", cfg)
	}
	if code := run([]string{"--config", file + ".missing"}, &out); code != 2 {
		t.Errorf("missing config file: exit %d, want 2", code)
	}
}
