package controlplane

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// TestRequestTooLarge: a request larger than the controller's limit (4 MiB,
// docs/limits.md) is refused with RESOURCE_EXHAUSTED before any handler
// runs, and nothing changes.
func TestRequestTooLarge(t *testing.T) {
	tc := startController(t, t.TempDir())
	_, err := tc.admin.CreateEnvironment(ctx(t), &cutoverv1.CreateEnvironmentRequest{Environment: &cutoverv1.Environment{
		Name: "big", Windows: []string{strings.Repeat("x", 4<<20)}}})
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("CreateEnvironment of 4 MiB = %v, want ResourceExhausted", err)
	}
	envs, err := tc.admin.ListEnvironments(ctx(t), &cutoverv1.ListEnvironmentsRequest{})
	if err != nil || len(envs.GetEnvironments()) != 0 {
		t.Errorf("environments after the refusal: %v (%v), want none", envs.GetEnvironments(), err)
	}
	// Just under the limit reaches the handler, which judges the content.
	_, err = tc.admin.CreateEnvironment(ctx(t), &cutoverv1.CreateEnvironmentRequest{Environment: &cutoverv1.Environment{
		Name: "big", Windows: []string{strings.Repeat("x", 4<<20-64)}}})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("CreateEnvironment just under 4 MiB = %v, want InvalidArgument (not a window)", err)
	}
}

// TestRegisterHugeRunCommand: an application whose cutover.yaml holds a
// 60 MB run.command is refused at registration with INVALID_ARGUMENT, and
// is not registered.
func TestRegisterHugeRunCommand(t *testing.T) {
	tc := startController(t, t.TempDir())
	dir := writeApp(t, "huge", "true")
	spec := "name: huge\nrun:\n  command: " + strings.Repeat("x", 60<<20) + "\n"
	if err := os.WriteFile(filepath.Join(dir, "cutover.yaml"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := tc.admin.RegisterApplication(ctx(t), &cutoverv1.RegisterApplicationRequest{Application: &cutoverv1.Application{SourceDir: dir}})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "larger than 65536 bytes") || len(err.Error()) > 2000 {
		t.Fatalf("RegisterApplication = %.2000v, want InvalidArgument: larger than 65536 bytes", err)
	}
	apps, err := tc.admin.ListApplications(ctx(t), &cutoverv1.ListApplicationsRequest{})
	if err != nil || len(apps.GetApplications()) != 0 {
		t.Errorf("applications after the refusal: %v (%v), want none", apps.GetApplications(), err)
	}
}
