package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cutover-dev/cutover/pkg/token"
)

// TestLoginLogout logs in to a real TLS server, uses the config file that
// login wrote, logs out.
func TestLoginLogout(t *testing.T) {
	good, bad := token.New(), token.New()
	ca := newTestCA(t)
	addr := serve(t, &authAdmin{admin: good.Operator()}, ca.serverTLS(t, "127.0.0.1", "localhost"))
	_, port, _ := net.SplitHostPort(addr)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "home", ".config", "cutover", "config.yaml")
	env := map[string]string{"HOME": filepath.Join(dir, "home")}
	goodFile := writeFile(t, dir, "good.token", good.Operator()+"\n", 0o600)

	// ctl runs cutoverctl with stdin and env.
	ctl := func(stdin string, terminal bool, args ...string) (int, string, string) {
		t.Helper()
		var out, errOut bytes.Buffer
		code := runWith(context.Background(), args, &cli{
			stdin: strings.NewReader(stdin), stdout: &out, stderr: &errOut, getenv: testEnv(env),
			stdinIsTerminal: func() bool { return terminal },
		})
		if strings.Contains(out.String()+errOut.String(), good.Secret) || strings.Contains(out.String()+errOut.String(), bad.Secret) {
			t.Errorf("cutoverctl %v shows a token's secret:\n%s%s", args, &out, &errOut)
		}
		return code, out.String(), errOut.String()
	}

	steps := []struct {
		name     string
		stdin    string
		terminal bool
		args     []string
		wantCode int
		wantOut  string
		wantErr  string
		// wantToken is what the config file then holds ("" none).
		wantToken string
	}{
		{"not logged in", "", false, []string{"--controller", addr, "--ca-file", ca.file, "env", "list"}, 1, "", "hint: give a token", ""},
		{"no token on a terminal", "", true, []string{"login", "--controller", addr, "--ca-file", ca.file}, 1, "", "no token: give it with --token-file FILE, or on stdin", ""},
		{"empty stdin", "", false, []string{"login", "--controller", addr, "--ca-file", ca.file}, 1, "", "no token on stdin", ""},
		{"a refused token is not saved", bad.Operator() + "\n", false, []string{"login", "--controller", addr, "--ca-file", ca.file}, 1, "",
			"error: Unauthenticated: token not valid", ""},
		{"a wrong CA is not saved", "", false, []string{"login", "--controller", addr, "--ca-file", newTestCA(t).file, "--token-file", goodFile}, 1, "",
			"hint: pass the controller's CA with --ca-file", ""},
		{"login from stdin", good.Operator() + "\n", false, []string{"login", "--controller", addr, "--ca-file", ca.file},
			0, "credentials accepted by " + addr + " (token " + good.ID + "); saved in " + cfgPath, "", good.Operator()},
		{"the config file serves", "", false, []string{"env", "list"}, 0, "production", "", good.Operator()},
		{"another controller does not get the token", "", false, []string{"--controller", "localhost:" + port, "env", "list"}, 1, "",
			"the config file's token and CA file are for " + addr, good.Operator()},
		{"CUTOVER_TOKEN wins over the file", "", false, []string{"env", "list"}, 0, "production", "", good.Operator()},
		{"logout", "", false, []string{"logout"}, 0, "token " + good.ID + " removed from " + cfgPath, "", ""},
		{"logged out", "", false, []string{"env", "list"}, 1, "", "error: Unauthenticated", ""},
		{"logout twice", "", false, []string{"logout"}, 0, "no token in " + cfgPath, "", ""},
		{"login with --token-file and the saved controller and CA", "", false, []string{"login", "--token-file", goodFile},
			0, "credentials accepted by " + addr, "", good.Operator()},
	}
	for _, s := range steps {
		if s.name == "CUTOVER_TOKEN wins over the file" {
			env["CUTOVER_TOKEN"] = good.Operator()
			writeFile(t, filepath.Dir(cfgPath), "config.yaml", "controller: "+addr+"\nca-file: "+ca.file+"\ntoken: "+bad.Operator()+"\n", 0o600)
		}
		code, out, errOut := ctl(s.stdin, s.terminal, s.args...)
		if s.name == "CUTOVER_TOKEN wins over the file" {
			delete(env, "CUTOVER_TOKEN")
			writeFile(t, filepath.Dir(cfgPath), "config.yaml", "controller: "+addr+"\nca-file: "+ca.file+"\ntoken: "+good.Operator()+"\n", 0o600)
		}
		if code != s.wantCode || !strings.Contains(out, s.wantOut) || !strings.Contains(errOut, s.wantErr) {
			t.Fatalf("%s: cutoverctl %v: exit %d (want %d)\nstdout (want %q):\n%s\nstderr (want %q):\n%s",
				s.name, s.args, code, s.wantCode, s.wantOut, out, s.wantErr, errOut)
		}
		cfg, err := loadConfig(cfgPath)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if cfg.Token != s.wantToken {
			t.Fatalf("%s: the config file holds token %q, want %q", s.name, token.ID(cfg.Token), token.ID(s.wantToken))
		}
		if s.wantToken != "" && (cfg.Controller != addr || cfg.CAFile != ca.file) {
			t.Fatalf("%s: config file %+v, want controller %s and ca-file %s", s.name, cfg, addr, ca.file)
		}
		if info, err := os.Stat(cfgPath); err == nil && info.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %s has mode %04o, want 0600", s.name, cfgPath, info.Mode().Perm())
		}
	}
	if info, err := os.Stat(filepath.Dir(cfgPath)); err != nil || info.Mode().Perm() != 0o700 {
		t.Errorf("the config file's directory: %v, %v; want mode 0700", info.Mode(), err)
	}
}
