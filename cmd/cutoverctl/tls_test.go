package main

import (
	"context"
	"crypto/tls"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/cutover-dev/cutover/pkg/token"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// authAdmin is an AdminService that, like the controller, wants
// "authorization: Bearer <token>": admin may do everything, viewer only
// list.
type authAdmin struct {
	cutoverv1.UnimplementedAdminServiceServer
	admin, viewer string
}

// role returns who the request's bearer token is, or an Unauthenticated status.
func (a *authAdmin) role(ctx context.Context) (string, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	auth := md.Get("authorization")
	if len(auth) != 1 {
		return "", status.Error(codes.Unauthenticated, "no token: send authorization: Bearer <token>")
	}
	switch strings.TrimPrefix(auth[0], "Bearer ") {
	case a.admin:
		return "admin", nil
	case a.viewer:
		return "viewer", nil
	}
	return "", status.Error(codes.Unauthenticated, "token not valid")
}

func (a *authAdmin) ListEnvironments(ctx context.Context, _ *cutoverv1.ListEnvironmentsRequest) (*cutoverv1.ListEnvironmentsResponse, error) {
	if _, err := a.role(ctx); err != nil {
		return nil, err
	}
	return &cutoverv1.ListEnvironmentsResponse{Environments: []*cutoverv1.Environment{{Name: "production"}}}, nil
}

func (a *authAdmin) CreateEnvironment(ctx context.Context, req *cutoverv1.CreateEnvironmentRequest) (*cutoverv1.Environment, error) {
	role, err := a.role(ctx)
	if err != nil {
		return nil, err
	}
	if role != "admin" {
		return nil, status.Errorf(codes.PermissionDenied, "%s may not create environments", role)
	}
	return req.GetEnvironment(), nil
}

// serve serves srv's AdminService on a loopback port with creds (nil:
// plaintext) and returns its address.
func serve(t *testing.T, admin cutoverv1.AdminServiceServer, conf *tls.Config) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var opts []grpc.ServerOption
	if conf != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(conf)))
	}
	srv := grpc.NewServer(opts...)
	cutoverv1.RegisterAdminServiceServer(srv, admin)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

// TestTLSAndTokens runs cutoverctl against a real TLS server with its own
// CA that checks bearer tokens.
func TestTLSAndTokens(t *testing.T) {
	admin, viewer, stranger := token.New(), token.New(), token.New()
	srv := &authAdmin{admin: admin.Operator(), viewer: viewer.Operator()}
	ca, otherCA := newTestCA(t), newTestCA(t)
	addr := serve(t, srv, ca.serverTLS(t, "127.0.0.1", "localhost"))
	_, port, _ := net.SplitHostPort(addr)
	wrongName := serve(t, srv, ca.serverTLS(t, "ctl.example"))
	tls12conf := ca.serverTLS(t, "127.0.0.1")
	tls12conf.MinVersion, tls12conf.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
	tls12 := serve(t, srv, tls12conf)
	plain := serve(t, srv, nil)

	dir := t.TempDir()
	adminFile := writeFile(t, dir, "admin.token", admin.Operator()+"\n", 0o600)

	tests := []struct {
		name     string
		env      map[string]string
		args     []string
		wantCode int
		wantOut  string
		wantErr  []string
	}{
		{"right token and CA", map[string]string{"CUTOVER_TOKEN": admin.Operator()},
			[]string{"--controller", addr, "--ca-file", ca.file, "env", "list"}, 0, "production", nil},
		{"by host name", map[string]string{"CUTOVER_TOKEN": admin.Operator(), "CUTOVER_CA_FILE": ca.file},
			[]string{"--controller", "localhost:" + port, "env", "list"}, 0, "production", nil},
		{"token file and CA from the environment", map[string]string{"CUTOVER_CA_FILE": ca.file, "CUTOVER_CONTROLLER": addr},
			[]string{"--token-file", adminFile, "env", "list"}, 0, "production", nil},
		{"no token", nil,
			[]string{"--controller", addr, "--ca-file", ca.file, "env", "list"}, 1, "",
			[]string{"error: Unauthenticated: no token", "hint: give a token with --token-file, CUTOVER_TOKEN or `cutoverctl login`"}},
		{"unknown token", map[string]string{"CUTOVER_TOKEN": stranger.Operator()},
			[]string{"--controller", addr, "--ca-file", ca.file, "env", "list"}, 1, "",
			[]string{"error: Unauthenticated: token not valid", "hint: give a token", "the token from CUTOVER_TOKEN was refused"}},
		{"role too weak", map[string]string{"CUTOVER_TOKEN": viewer.Operator()},
			[]string{"--controller", addr, "--ca-file", ca.file, "env", "create", "staging"}, 1, "",
			[]string{"error: PermissionDenied: viewer may not create environments", "hint: your token's role does not allow this; ask an admin"}},
		{"another CA", map[string]string{"CUTOVER_TOKEN": admin.Operator()},
			[]string{"--controller", addr, "--ca-file", otherCA.file, "env", "list"}, 1, "",
			[]string{"certificate signed by unknown authority",
				"hint: pass the controller's CA with --ca-file (its <data-dir>/tls/ca.crt) or CUTOVER_CA_FILE; " + otherCA.file + " is not the CA"}},
		{"the system's roots", map[string]string{"CUTOVER_TOKEN": admin.Operator()},
			[]string{"--controller", addr, "env", "list"}, 1, "",
			[]string{"certificate signed by unknown authority", "hint: pass the controller's CA with --ca-file"}},
		{"a certificate for another name", map[string]string{"CUTOVER_TOKEN": admin.Operator()},
			[]string{"--controller", wrongName, "--ca-file", ca.file, "env", "list"}, 1, "",
			[]string{"error: Unavailable:", `hint: the controller's certificate does not name "127.0.0.1"`}},
		{"TLS 1.2 is refused", map[string]string{"CUTOVER_TOKEN": admin.Operator()},
			[]string{"--controller", tls12, "--ca-file", ca.file, "env", "list"}, 1, "",
			[]string{"error: Unavailable:", "protocol version", "hint: " + tls12 + " does not speak TLS 1.3"}},
		{"a plaintext server", map[string]string{"CUTOVER_TOKEN": admin.Operator()},
			[]string{"--controller", plain, "--ca-file", ca.file, "env", "list"}, 1, "",
			[]string{"hint: " + plain + " does not answer TLS"}},
		{"nobody listening", map[string]string{"CUTOVER_TOKEN": admin.Operator()},
			[]string{"--controller", "127.0.0.1:1", "--ca-file", ca.file, "env", "list"}, 1, "",
			[]string{"error: Unavailable:", "hint: is a controller listening on 127.0.0.1:1?"}},
		{"a CA file that is not PEM", map[string]string{"CUTOVER_TOKEN": admin.Operator()},
			[]string{"--controller", addr, "--ca-file", adminFile, "env", "list"}, 1, "",
			[]string{"CA file " + adminFile + " holds no PEM certificate"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"CUTOVER_CONFIG": filepath.Join(t.TempDir(), "config.yaml")}
			for k, v := range tt.env {
				env[k] = v
			}
			code, out, errOut := runEnv(t, env, tt.args...)
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.wantCode, out, errOut)
			}
			if !strings.Contains(out, tt.wantOut) {
				t.Errorf("stdout lacks %q:\n%s", tt.wantOut, out)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
			for _, tok := range []token.Token{admin, viewer, stranger} {
				if strings.Contains(out+errOut, tok.Secret) {
					t.Errorf("output shows a token's secret:\n%s%s", out, errOut)
				}
			}
		})
	}
}
