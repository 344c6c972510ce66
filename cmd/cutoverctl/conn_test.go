package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cutover-dev/cutover/pkg/token"
)

// writeFile writes content to a new file in dir with mode perm.
func writeFile(t *testing.T, dir, name, content string, perm os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, perm); err != nil { // not narrowed by the umask
		t.Fatal(err)
	}
	return p
}

func TestResolveEndpoint(t *testing.T) {
	dir := t.TempDir()
	tok := func() string { return token.New().Operator() }
	flagTok, envTok, envFileTok, cfgTok, cfgFileTok := tok(), tok(), tok(), tok(), tok()
	flagFile := writeFile(t, dir, "flag.token", flagTok+"\n", 0o600)
	envFile := writeFile(t, dir, "env.token", "  "+envFileTok+"\r\n\n", 0o600)
	cfgFile := writeFile(t, dir, "cfg.token", cfgFileTok, 0o600)
	openFile := writeFile(t, dir, "open.token", flagTok, 0o644)
	emptyFile := writeFile(t, dir, "empty.token", " \n", 0o600)
	joinFile := writeFile(t, dir, "join.token", "cutoverjoin.0123456789abcdef."+strings.Repeat("A", 43)+"."+strings.Repeat("a", 64), 0o600)
	badFile := writeFile(t, dir, "bad.token", "cutover.0123456789abcdef.s3cret-but-short", 0o600)
	cfgPath := filepath.Join(dir, "config.yaml")

	tests := []struct {
		name      string
		flags     connFlags
		env       map[string]string
		cfg       config
		want      endpoint
		wantWarn  string
		wantErr   string
		wantNoTok bool
	}{
		{
			name: "nothing: the default controller, the system's roots, no token",
			want: endpoint{controller: defaultController},
		},
		{
			name:  "--token-file beats CUTOVER_TOKEN, CUTOVER_TOKEN_FILE and the config file",
			flags: connFlags{tokenFile: flagFile},
			env:   map[string]string{"CUTOVER_TOKEN": envTok, "CUTOVER_TOKEN_FILE": envFile},
			cfg:   config{Token: cfgTok},
			want:  endpoint{controller: defaultController, token: flagTok, tokenFrom: "--token-file " + flagFile},
		},
		{
			name: "CUTOVER_TOKEN beats CUTOVER_TOKEN_FILE and the config file",
			env:  map[string]string{"CUTOVER_TOKEN": " " + envTok + "\n", "CUTOVER_TOKEN_FILE": envFile},
			cfg:  config{Token: cfgTok},
			want: endpoint{controller: defaultController, token: envTok, tokenFrom: "CUTOVER_TOKEN"},
		},
		{
			name: "CUTOVER_TOKEN_FILE beats the config file; white space trimmed",
			env:  map[string]string{"CUTOVER_TOKEN_FILE": envFile},
			cfg:  config{Token: cfgTok},
			want: endpoint{controller: defaultController, token: envFileTok, tokenFrom: "CUTOVER_TOKEN_FILE " + envFile},
		},
		{
			name: "the config file's token",
			cfg:  config{Token: cfgTok},
			want: endpoint{controller: defaultController, token: cfgTok, tokenFrom: "config file " + cfgPath},
		},
		{
			name: "the config file's token-file",
			cfg:  config{TokenFile: cfgFile},
			want: endpoint{controller: defaultController, token: cfgFileTok, tokenFrom: "token-file " + cfgFile + " (config file " + cfgPath + ")"},
		},
		{
			name:  "--controller beats CUTOVER_CONTROLLER; --ca-file beats CUTOVER_CA_FILE",
			flags: connFlags{controller: "flag:1", caFile: "flag.crt"},
			env:   map[string]string{"CUTOVER_CONTROLLER": "env:1", "CUTOVER_CA_FILE": "env.crt"},
			want:  endpoint{controller: "flag:1", caFile: "flag.crt"},
		},
		{
			name: "CUTOVER_CONTROLLER and CUTOVER_CA_FILE beat the config file",
			env:  map[string]string{"CUTOVER_CONTROLLER": "cfg:1", "CUTOVER_CA_FILE": "env.crt"},
			cfg:  config{Controller: "cfg:1", CAFile: "cfg.crt", Token: cfgTok},
			want: endpoint{controller: "cfg:1", caFile: "env.crt", token: cfgTok, tokenFrom: "config file " + cfgPath},
		},
		{
			name: "the config file's controller and CA",
			cfg:  config{Controller: "cfg:1", CAFile: "cfg.crt"},
			want: endpoint{controller: "cfg:1", caFile: "cfg.crt"},
		},
		{
			name:      "another controller than the config file's: its token and CA are not used",
			flags:     connFlags{controller: "other:1"},
			cfg:       config{Controller: "cfg:1", CAFile: "cfg.crt", Token: cfgTok},
			want:      endpoint{controller: "other:1", otherConfig: "cfg:1"},
			wantNoTok: true,
		},
		{
			name:     "a token file others may read: a warning",
			flags:    connFlags{tokenFile: openFile},
			want:     endpoint{controller: defaultController, token: flagTok, tokenFrom: "--token-file " + openFile},
			wantWarn: "chmod 600 " + openFile,
		},
		{
			name:    "a missing token file",
			flags:   connFlags{tokenFile: filepath.Join(dir, "nope")},
			wantErr: "read token file: open " + filepath.Join(dir, "nope") + ": no such file or directory",
		},
		{
			name:    "an empty token file",
			env:     map[string]string{"CUTOVER_TOKEN_FILE": emptyFile},
			wantErr: "token file " + emptyFile + " is empty",
		},
		{
			name:    "a join token is not an operator token",
			flags:   connFlags{tokenFile: joinFile},
			wantErr: "the token from --token-file " + joinFile + " is not an operator token: malformed token: this is an agent join token",
		},
		{
			name:    "a malformed token",
			flags:   connFlags{tokenFile: badFile},
			wantErr: "the token from --token-file " + badFile + " is not an operator token: malformed token",
		},
		{
			name:    "a malformed CUTOVER_TOKEN",
			env:     map[string]string{"CUTOVER_TOKEN": "hunter2"},
			wantErr: "the token from CUTOVER_TOKEN is not an operator token",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, warnings, err := resolveEndpoint(tt.flags, testEnv(tt.env), &tt.cfg, cfgPath)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one with %q", err, tt.wantErr)
				}
				for _, secret := range []string{"s3cret", "hunter2", strings.Repeat("A", 43)} {
					if strings.Contains(err.Error(), secret) {
						t.Errorf("error %q shows the token", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("endpoint = %+v\nwant       %+v", got, tt.want)
			}
			if tt.wantNoTok && got.token != "" {
				t.Errorf("token from %s used", got.tokenFrom)
			}
			if w := strings.Join(warnings, "\n"); tt.wantWarn == "" && w != "" || !strings.Contains(w, tt.wantWarn) {
				t.Errorf("warnings = %q, want %q", w, tt.wantWarn)
			}
		})
	}
}

func TestBearer(t *testing.T) {
	tok := token.New()
	b := bearer{token: tok.Operator()}
	md, err := b.GetRequestMetadata(context.Background(), "https://127.0.0.1:7070/cutover.v1.AdminService")
	if err != nil {
		t.Fatal(err)
	}
	if len(md) != 1 || md["authorization"] != "Bearer "+tok.Operator() {
		t.Errorf("metadata = %q, want only authorization: Bearer <token>", md)
	}
	if !b.RequireTransportSecurity() {
		t.Error("RequireTransportSecurity = false: the token could travel in clear")
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
		if s := fmt.Sprintf(verb, b); strings.Contains(s, tok.Secret) || !strings.Contains(s, tok.ID) {
			t.Errorf("Sprintf(%s, bearer) = %q: want the id and not the secret", verb, s)
		}
	}
}
