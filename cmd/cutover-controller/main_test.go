package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"
)

func TestExitStatus(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"help", []string{"-h"}, 0, "-data-dir string"},
		{"typo", []string{"--data-dri", "x"}, 2, "flag provided but not defined: -data-dri"},
		{"missing data dir", nil, 2, "--data-dir is required"},
		{"bad log level", []string{"--data-dir", t.TempDir(), "--log-level", "loud"}, 2, "loud"},
		{"bad log format", []string{"--data-dir", t.TempDir(), "--log-format", "xml"}, 2, "xml"},
		{"stray argument", []string{"--data-dir", t.TempDir(), "extra"}, 2, "unexpected arguments"},
		{"unknown store", []string{"--data-dir", t.TempDir(), "--store", "sqlite"}, 2, `--store "sqlite"`},
		{"etcd without endpoints", []string{"--data-dir", t.TempDir(), "--store", "etcd"}, 2, "--etcd-endpoints"},
		{"etcd user without password file", []string{"--data-dir", t.TempDir(), "--store", "etcd", "--etcd-endpoints", "http://127.0.0.1:1", "--etcd-username", "u"}, 2, "--etcd-password-file"},
		{"etcd cert without key", []string{"--data-dir", t.TempDir(), "--store", "etcd", "--etcd-endpoints", "http://127.0.0.1:1", "--etcd-cert-file", "c"}, 2, "--etcd-key-file"},
		{"bad max egress", []string{"--data-dir", t.TempDir(), "--max-egress", "fast"}, 2, `size "fast"`},
		{"listen taken", []string{"--data-dir", t.TempDir(), "--listen", "256.0.0.1:1"}, 1, "--listen"},
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

func TestEtcdFlags(t *testing.T) {
	file := t.TempDir() + "/controller.yaml"
	yaml := "data-dir: d\nstore: etcd\netcd-endpoints:\n  - http://a:2379\n  - http://b:2379,http://c:2379\netcd-prefix: /prod/\netcd-username: u\netcd-password-file: /p\n"
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
	}{
		{"flags", []string{"--data-dir", "d", "--store", "etcd", "--etcd-endpoints", "http://a:2379,http://b:2379",
			"--etcd-endpoints", "http://c:2379", "--etcd-prefix", "/prod/", "--etcd-username", "u", "--etcd-password-file", "/p"}},
		{"config file", []string{"--config", file}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			cfg, _, _, err := parseFlags(tt.args, &out)
			if err != nil {
				t.Fatal(err)
			}
			want := []string{"http://a:2379", "http://b:2379", "http://c:2379"}
			if cfg.Store != "etcd" || strings.Join(cfg.Etcd.Endpoints, " ") != strings.Join(want, " ") || cfg.Etcd.Prefix != "/prod/" ||
				cfg.Etcd.Username != "u" || cfg.Etcd.PasswordFile != "/p" {
				t.Errorf("cfg = %+v", cfg)
			}
		})
	}
}

func TestConfigFile(t *testing.T) {
	file := t.TempDir() + "/controller.yaml"
	yaml := "data-dir: /var/lib/x\nlisten: 0.0.0.0:7070\nbuild-timeout: 5m\nlog-format: json\n"
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cfg, level, format, err := parseFlags([]string{"--config", file, "--listen", "127.0.0.1:9"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DataDir != "/var/lib/x" || cfg.Listen != "127.0.0.1:9" || cfg.BuildTimeout != 5*time.Minute || format != "json" || level != "info" {
		t.Errorf("cfg = %+v, level %q, format %q", cfg, level, format)
	}
	if err := os.WriteFile(file, []byte("data-dir: x\nlisten-addr: y\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code := run([]string{"--config", file}, &out); code != 2 || !strings.Contains(out.String(), "listen-addr") {
		t.Errorf("unknown key: exit %d, want 2; output:\n%s", code, out.String())
	}
}

func TestMaxEgress(t *testing.T) {
	file := t.TempDir() + "/controller.yaml"
	if err := os.WriteFile(file, []byte("data-dir: d\nmax-egress: 64MiB\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		args []string
		want int64
	}{
		{"default: no cap", []string{"--data-dir", "d"}, 0},
		{"bytes", []string{"--data-dir", "d", "--max-egress", "1048576"}, 1 << 20},
		{"unit", []string{"--data-dir", "d", "--max-egress", "50MiB"}, 50 << 20},
		{"short unit", []string{"--data-dir", "d", "--max-egress", "512K"}, 512 << 10},
		{"config file", []string{"--config", file}, 64 << 20},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			cfg, _, _, err := parseFlags(tt.args, &out)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.MaxEgress != tt.want {
				t.Errorf("MaxEgress = %d, want %d", cfg.MaxEgress, tt.want)
			}
		})
	}
}
