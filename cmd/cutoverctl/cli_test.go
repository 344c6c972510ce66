package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/cutover-dev/cutover/pkg/token"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// fakeAdmin is an AdminService that records what it was sent and answers
// from canned values.
type fakeAdmin struct {
	cutoverv1.UnimplementedAdminServiceServer

	mu sync.Mutex
	// auths are the authorization headers received, and actors the
	// x-cutover-actor headers (which cutoverctl no longer sends).
	auths, actors []string
	updates       []*cutoverv1.UpdateEnvironmentRequest
	creates       []*cutoverv1.CreateDeploymentRequest
	// events are what WatchDeployment streams, per deployment id.
	events map[string][]cutoverv1.DeploymentState
}

func (f *fakeAdmin) record(ctx context.Context) {
	md, _ := metadata.FromIncomingContext(ctx)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.auths = append(f.auths, md.Get("authorization")...)
	f.actors = append(f.actors, md.Get("x-cutover-actor")...)
}

func (f *fakeAdmin) GetEnvironment(ctx context.Context, req *cutoverv1.GetEnvironmentRequest) (*cutoverv1.Environment, error) {
	f.record(ctx)
	if req.GetName() != "prod" {
		return nil, status.Errorf(codes.NotFound, "environment %q does not exist; create it with cutoverctl env create", req.GetName())
	}
	return &cutoverv1.Environment{Name: "prod", TwoStage: true}, nil
}

func (f *fakeAdmin) UpdateEnvironment(ctx context.Context, req *cutoverv1.UpdateEnvironmentRequest) (*cutoverv1.Environment, error) {
	f.record(ctx)
	f.mu.Lock()
	f.updates = append(f.updates, req)
	f.mu.Unlock()
	return req.GetEnvironment(), nil
}

func (f *fakeAdmin) CreateDeployment(ctx context.Context, req *cutoverv1.CreateDeploymentRequest) (*cutoverv1.Deployment, error) {
	f.record(ctx)
	f.mu.Lock()
	f.creates = append(f.creates, req)
	f.mu.Unlock()
	d := &cutoverv1.Deployment{Id: "d-1", Environment: req.GetEnvironment(), State: cutoverv1.DeploymentState_DEPLOYMENT_STATE_PLANNED}
	for _, a := range req.GetApplications() {
		d.Applications = append(d.Applications, &cutoverv1.DeploymentApplication{Name: a.GetName(), VersionLabel: a.GetVersionLabel()})
	}
	return d, nil
}

func (f *fakeAdmin) PrepareDeployment(ctx context.Context, req *cutoverv1.PrepareDeploymentRequest) (*cutoverv1.Deployment, error) {
	f.record(ctx)
	return &cutoverv1.Deployment{Id: req.GetId(), State: cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARING}, nil
}

func (f *fakeAdmin) ContinueDeployment(ctx context.Context, req *cutoverv1.ContinueDeploymentRequest) (*cutoverv1.Deployment, error) {
	f.record(ctx)
	if req.GetId() == "d-planned" {
		return nil, status.Error(codes.FailedPrecondition, "deployment d-planned is PLANNED; prepare it first")
	}
	return &cutoverv1.Deployment{Id: req.GetId(), State: cutoverv1.DeploymentState_DEPLOYMENT_STATE_ACTIVATING}, nil
}

func (f *fakeAdmin) GetDeploymentPackage(req *cutoverv1.GetDeploymentPackageRequest, stream grpc.ServerStreamingServer[cutoverv1.DeploymentPackageChunk]) error {
	switch req.GetId() {
	case "d-pkg":
		if err := stream.Send(&cutoverv1.DeploymentPackageChunk{Name: "app.apk", SizeBytes: 6, Data: []byte("abc")}); err != nil {
			return err
		}
		return stream.Send(&cutoverv1.DeploymentPackageChunk{Data: []byte("def")})
	case "d-short":
		return stream.Send(&cutoverv1.DeploymentPackageChunk{Name: "app.apk", SizeBytes: 6, Data: []byte("abc")})
	}
	return status.Error(codes.FailedPrecondition, "deployment "+req.GetId()+" has no package")
}

func (f *fakeAdmin) GetDeployment(ctx context.Context, req *cutoverv1.GetDeploymentRequest) (*cutoverv1.Deployment, error) {
	f.record(ctx)
	switch req.GetId() {
	case "d-final":
		return &cutoverv1.Deployment{Id: req.GetId(), State: cutoverv1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED}, nil
	case "d-hang":
		return &cutoverv1.Deployment{Id: req.GetId(), State: cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARING}, nil
	}
	return nil, status.Errorf(codes.NotFound, "deployment %s does not exist", req.GetId())
}

func (f *fakeAdmin) WatchDeployment(req *cutoverv1.WatchDeploymentRequest, stream grpc.ServerStreamingServer[cutoverv1.DeploymentEvent]) error {
	f.record(stream.Context())
	if req.GetId() == "d-hang" {
		<-stream.Context().Done()
		return stream.Context().Err()
	}
	f.mu.Lock()
	states := f.events[req.GetId()]
	f.mu.Unlock()
	for _, s := range states {
		d := &cutoverv1.Deployment{Id: req.GetId(), State: s}
		if s == cutoverv1.DeploymentState_DEPLOYMENT_STATE_ROLLED_BACK {
			d.Error = "agent fe-2: health check failed"
		}
		if err := stream.Send(&cutoverv1.DeploymentEvent{Deployment: d}); err != nil {
			return err
		}
	}
	return nil
}

// testToken is the operator token runCtl gives.
var testToken = token.New().Operator()

// fakeCAs holds, per fake controller's address, the file of the CA that
// signed its certificate.
var fakeCAs sync.Map

// startFake serves f over TLS on a loopback port and returns its address.
func startFake(t *testing.T, f cutoverv1.AdminServiceServer) string {
	t.Helper()
	ca := newTestCA(t)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(ca.serverTLS(t, "127.0.0.1", "localhost"))))
	cutoverv1.RegisterAdminServiceServer(srv, f)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	fakeCAs.Store(lis.Addr().String(), ca.file)
	return lis.Addr().String()
}

// fakeCAFile returns the file of the CA of the fake controller at addr.
func fakeCAFile(addr string) string {
	ca, _ := fakeCAs.Load(addr)
	file, _ := ca.(string)
	return file
}

// testEnv returns a getenv that sees only vars, so that tests never read
// the caller's CUTOVER_* variables or config file.
func testEnv(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

// runCtl runs cutoverctl in-process against addr, trusting its CA and with
// testToken, from the environment.
func runCtl(t *testing.T, addr string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	return runEnv(t, map[string]string{"CUTOVER_CA_FILE": fakeCAFile(addr), "CUTOVER_TOKEN": testToken},
		append([]string{"--controller", addr}, args...)...)
}

// runEnv runs cutoverctl in-process with the environment vars only (and
// a config file in t.TempDir() unless vars names one).
func runEnv(t *testing.T, vars map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	if _, ok := vars["CUTOVER_CONFIG"]; !ok {
		vars["CUTOVER_CONFIG"] = filepath.Join(t.TempDir(), "config.yaml")
	}
	var out, errOut bytes.Buffer
	code = runWith(context.Background(), args, &cli{stdout: &out, stderr: &errOut, getenv: testEnv(vars)})
	return code, out.String(), errOut.String()
}

func TestCLIAgainstFakeController(t *testing.T) {
	const (
		preparing   = cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARING
		prepared    = cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED
		activating  = cutoverv1.DeploymentState_DEPLOYMENT_STATE_ACTIVATING
		rolledBack  = cutoverv1.DeploymentState_DEPLOYMENT_STATE_ROLLED_BACK
		deployedSta = cutoverv1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED
	)
	f := &fakeAdmin{events: map[string][]cutoverv1.DeploymentState{
		"d-ok":   {preparing, prepared},
		"d-bad":  {activating, rolledBack},
		"d-good": {activating, deployedSta},
	}}
	addr := startFake(t, f)

	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantOut    string
		wantErrOut string
	}{
		{"get", []string{"env", "get", "prod"}, 0, "TWO-STAGE         yes", ""},
		{"not found", []string{"env", "get", "nope"}, 1, "", `error: NotFound: environment "nope" does not exist`},
		{"precondition", []string{"deploy", "continue", "d-planned"}, 1, "", "error: FailedPrecondition: deployment d-planned is PLANNED; prepare it first"},
		{"update without flags", []string{"env", "update", "prod"}, 1, "", "nothing to update"},
		{"bad output", []string{"-o", "xml", "env", "get", "prod"}, 1, "", `-o "xml": want table, json or yaml`},
		{"yaml", []string{"-o", "yaml", "env", "get", "prod"}, 0, "name: prod\ntwo_stage: true\n", ""},
		{"watch final yaml", []string{"-o", "yaml", "deploy", "watch", "d-final"}, 0, "---\ndeployment:\n  id: d-final\n", ""},
		{"missing env flag", []string{"deploy", "create", "--app", "hello=v1"}, 1, "", `"env" not set`},
		{"prepare wait ok", []string{"deploy", "prepare", "d-ok", "--wait"}, 0, "PREPARED", "PREPARING"},
		{"continue wait rolled back", []string{"deploy", "continue", "d-bad", "--wait"}, 1, "ROLLED_BACK", "error: deployment d-bad ended ROLLED_BACK: agent fe-2: health check failed"},
		{"continue wait ok", []string{"deploy", "continue", "d-good", "--wait"}, 0, "DEPLOYED", ""},
		{"watch unknown", []string{"deploy", "watch", "d-nope"}, 1, "", "error: NotFound: deployment d-nope does not exist"},
		{"watch final", []string{"deploy", "watch", "d-final"}, 0, "d-final  DEPLOYED", ""},
		{"watch final json", []string{"-o", "json", "deploy", "watch", "d-final"}, 0, `"DEPLOYMENT_STATE_DEPLOYED"`, ""}, // protojson spacing is unstable on purpose
		{"watch timeout", []string{"--timeout", "300ms", "deploy", "watch", "d-hang"}, 1, "PREPARING", "stopped following deployment d-hang, last seen PREPARING"},
		{"unimplemented", []string{"deploy", "plan", "d-1"}, 1, "", "error: Unimplemented:"},
		{"package to stdout", []string{"deploy", "package", "d-pkg", "-o", "-"}, 0, "abcdef", ""},
		{"package needs -o", []string{"deploy", "package", "d-pkg"}, 1, "", "-o FILE is required"},
		{"no package", []string{"deploy", "package", "d-none", "-o", "-"}, 1, "", "error: FailedPrecondition: deployment d-none has no package"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCtl(t, addr, tt.args...)
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.wantCode, out, errOut)
			}
			if !strings.Contains(out, tt.wantOut) {
				t.Errorf("stdout lacks %q:\n%s", tt.wantOut, out)
			}
			if !strings.Contains(errOut, tt.wantErrOut) {
				t.Errorf("stderr lacks %q:\n%s", tt.wantErrOut, errOut)
			}
		})
	}

	file := filepath.Join(t.TempDir(), "app.apk")
	if code, _, errOut := runCtl(t, addr, "deploy", "package", "d-pkg", "-o", file); code != 0 || !strings.Contains(errOut, "written to "+file) {
		t.Errorf("deploy package -o FILE: exit %d, stderr %s", code, errOut)
	}
	if b, err := os.ReadFile(file); err != nil || string(b) != "abcdef" {
		t.Errorf("%s = %q, %v; want abcdef", file, b, err)
	}
	short := filepath.Join(t.TempDir(), "short.apk")
	if code, _, errOut := runCtl(t, addr, "deploy", "package", "d-short", "-o", short); code != 1 || !strings.Contains(errOut, "received 3 bytes of the 6-byte package") {
		t.Errorf("a cut stream: exit %d, stderr %s", code, errOut)
	}
	if _, err := os.Stat(short); err == nil {
		t.Errorf("a cut stream left %s", short)
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.auths) == 0 || f.auths[0] != "Bearer "+testToken {
		t.Errorf("authorization metadata = %q, want Bearer and the token", f.auths)
	}
	if len(f.actors) != 0 {
		t.Errorf("x-cutover-actor metadata = %q, want none (the token says who asks)", f.actors)
	}
}

func TestCLIRequests(t *testing.T) {
	f := &fakeAdmin{}
	addr := startFake(t, f)

	if code, _, errOut := runCtl(t, addr, "env", "update", "prod", "--two-stage=false", "--window", "Sat 03:00-05:00 UTC"); code != 0 {
		t.Fatalf("env update: exit %d: %s", code, errOut)
	}
	code, out, errOut := runCtl(t, addr, "-o", "json", "deploy", "create", "--env", "prod", "--app", "hello=v2", "--app", "web=7")
	if code != 0 {
		t.Fatalf("deploy create: exit %d: %s", code, errOut)
	}
	var d cutoverv1.Deployment
	if err := protojson.Unmarshal([]byte(out), &d); err != nil {
		t.Fatalf("deploy create -o json printed %q: %v", out, err)
	}
	if d.GetId() != "d-1" || len(d.GetApplications()) != 2 || !strings.Contains(out, `"version_label"`) {
		t.Errorf("deploy create -o json = %s", out)
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	wantUpdate := &cutoverv1.UpdateEnvironmentRequest{
		Environment: &cutoverv1.Environment{Name: "prod", Windows: []string{"Sat 03:00-05:00 UTC"}},
	}
	if len(f.updates) != 1 || !proto.Equal(f.updates[0].GetEnvironment(), wantUpdate.GetEnvironment()) {
		t.Fatalf("UpdateEnvironment got %v, want %v", f.updates, wantUpdate)
	}
	if got := f.updates[0].GetUpdateMask().GetPaths(); strings.Join(got, ",") != "two_stage,windows" {
		t.Errorf("update_mask = %v, want [two_stage windows]", got)
	}
	wantCreate := &cutoverv1.CreateDeploymentRequest{Environment: "prod", Applications: []*cutoverv1.ApplicationVersion{
		{Name: "hello", VersionLabel: "v2"}, {Name: "web", VersionLabel: "7"},
	}}
	if len(f.creates) != 1 || !proto.Equal(f.creates[0], wantCreate) {
		t.Errorf("CreateDeployment got %v, want %v", f.creates, wantCreate)
	}
}
