package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cutover-dev/cutover/pkg/token"
)

func TestConfigPath(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"CUTOVER_CONFIG first", map[string]string{"CUTOVER_CONFIG": "/c.yaml", "XDG_CONFIG_HOME": "/x", "HOME": "/h"}, "/c.yaml"},
		{"then XDG_CONFIG_HOME", map[string]string{"XDG_CONFIG_HOME": "/x", "HOME": "/h"}, "/x/cutover/config.yaml"},
		{"then ~/.config", map[string]string{"HOME": "/h"}, "/h/.config/cutover/config.yaml"},
		{"none", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := configPath(testEnv(tt.env)); got != tt.want {
				t.Errorf("configPath = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestConfigRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "xdg", "cutover")
	path := filepath.Join(dir, "config.yaml")
	want := &config{Controller: "ctl.internal:7070", CAFile: "/etc/cutover/ca.crt", Token: token.New().Operator()}
	if err := saveConfig(path, want); err != nil {
		t.Fatal(err)
	}
	for p, perm := range map[string]os.FileMode{path: 0o600, dir: 0o700} {
		info, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm() != perm {
			t.Errorf("%s: mode %04o, want %04o", p, info.Mode().Perm(), perm)
		}
	}
	got, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if *got != *want {
		t.Errorf("loaded %+v, want %+v", got, want)
	}
	b, _ := os.ReadFile(path)
	for _, key := range []string{"controller: ctl.internal:7070\n", "ca-file: /etc/cutover/ca.crt\n", "token: cutover."} {
		if !strings.Contains(string(b), key) {
			t.Errorf("file lacks %q:\n%s", key, b)
		}
	}

	// Saving again replaces the file, keeps its mode and leaves no temporary file.
	want.Token = ""
	if err := saveConfig(path, want); err != nil {
		t.Fatal(err)
	}
	if got, err := loadConfig(path); err != nil || got.Token != "" {
		t.Errorf("after saving without a token: %+v, %v", got, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("%s holds %d entries, want only config.yaml", dir, len(entries))
	}
}

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	secret := token.New().Operator()
	tests := []struct {
		name    string
		content string // "" with missing: no file
		missing bool
		want    config
		wantErr string
	}{
		{name: "missing file", missing: true},
		{name: "empty file", content: ""},
		{name: "relative paths from the file's directory", content: "ca-file: tls/ca.crt\ntoken-file: ../t\n",
			want: config{CAFile: filepath.Join(dir, "tls", "ca.crt"), TokenFile: filepath.Join(filepath.Dir(dir), "t")}},
		{name: "unknown key", content: "controller: a:1\ntokn: " + secret + "\n", wantErr: "field tokn not found"},
		{name: "token and token-file", content: "token: " + secret + "\ntoken-file: /t\n", wantErr: "sets both token and token-file"},
		{name: "not a map", content: secret + "\n", wantErr: "want the keys controller, ca-file, token or token-file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, "config.yaml")
			_ = os.Remove(path)
			if !tt.missing {
				writeFile(t, dir, "config.yaml", tt.content, 0o600)
			}
			got, err := loadConfig(path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one with %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), token.ID(secret)) || strings.Contains(err.Error(), secret[len(secret)-20:]) {
					t.Errorf("error %q shows the token", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if *got != tt.want {
				t.Errorf("loaded %+v, want %+v", got, tt.want)
			}
		})
	}
}
