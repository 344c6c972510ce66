package controlplane

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// downloadPackage reads the package of deployment id; the error is the
// stream's.
func downloadPackage(t *testing.T, tc *testController, id string) (string, error) {
	t.Helper()
	stream, err := tc.admin.GetDeploymentPackage(ctx(t), &cutoverv1.GetDeploymentPackageRequest{Id: id})
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return b.String(), nil
		}
		if err != nil {
			return "", err
		}
		b.Write(msg.Data)
	}
}

// TestPackageStepOnlyWhenItsFilesChanged: the package step runs after the
// first deployment (nothing ran before), not after one that changed no
// file matching when_changed, and again after one that did; each produced
// file is downloadable.
func TestPackageStepOnlyWhenItsFilesChanged(t *testing.T) {
	tc := startController(t, t.TempDir())
	startFakeAgent(t, tc.addr, "fe1", "production", false)
	d := setup(t, tc, "production", true, "hello", "echo built > BUILT")
	app, err := tc.admin.GetApplication(ctx(t), &cutoverv1.GetApplicationRequest{Name: "hello"})
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, body string) {
		t.Helper()
		p := filepath.Join(app.SourceDir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	spec, err := os.ReadFile(filepath.Join(app.SourceDir, "cutover.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	write("cutover.yaml", string(spec)+"package: {command: 'mkdir -p out && cat mobile/app.js > out/app.apk', when_changed: [mobile/**], output: out/app.apk}\n")
	write("mobile/app.js", "one\n")
	waitAgents(t, tc, "production", 1)
	deploy := func(id string) *cutoverv1.Deployment {
		t.Helper()
		prepare(t, tc, id, cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED)
		continueTo(t, tc, id, cutoverv1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED)
		return waitFor(t, tc, id, "the package step settled", func(d *cutoverv1.Deployment) bool {
			return d.Package != nil && (d.Package.Ran || d.Package.Error != "" || len(d.Package.Changed) == 0)
		})
	}
	next := func(label string) string {
		t.Helper()
		d, err := tc.admin.CreateDeployment(ctx(t), &cutoverv1.CreateDeploymentRequest{Environment: "production",
			Applications: []*cutoverv1.ApplicationVersion{{Name: "hello", VersionLabel: label}}})
		if err != nil {
			t.Fatal(err)
		}
		return d.Id
	}

	dep := deploy(d.Id)
	if p := dep.Package; !p.Ran || p.Error != "" || p.SizeBytes != 4 || !strings.Contains(strings.Join(p.Changed, ","), "mobile/app.js") {
		t.Fatalf("first deployment's package step = %v, want it run on mobile/app.js", p)
	}
	if got, err := downloadPackage(t, tc, d.Id); err != nil || got != "one\n" {
		t.Fatalf("package of %s = %q, %v", d.Id, got, err)
	}

	write("VERSION", "v3\n") // outside when_changed
	d2 := next("v3")
	if p := deploy(d2).Package; p.Ran || len(p.Changed) != 0 {
		t.Fatalf("package step of a deployment that changed no mobile file = %v, want not run", p)
	}
	if _, err := downloadPackage(t, tc, d2); status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "did not run") {
		t.Fatalf("package of %s: %v, want FailedPrecondition saying the step did not run", d2, err)
	}

	write("mobile/app.js", "two\n")
	d3 := next("v4")
	if p := deploy(d3).Package; !p.Ran || strings.Join(p.Changed, ",") != "mobile/app.js" {
		t.Fatalf("package step after mobile/app.js changed = %v", p)
	}
	if got, err := downloadPackage(t, tc, d3); err != nil || got != "two\n" {
		t.Fatalf("package of %s = %q, %v", d3, got, err)
	}
	if _, err := downloadPackage(t, tc, "d-99"); status.Code(err) != codes.NotFound {
		t.Fatalf("package of an unknown deployment: %v, want NotFound", err)
	}
}
