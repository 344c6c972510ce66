package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// TestLimits drives the real controller over its limits (docs/limits.md):
// an application whose cutover.yaml holds a 60 MB run.command is refused
// at registration with INVALID_ARGUMENT and is not registered; a request
// over 4 MiB is refused with RESOURCE_EXHAUSTED and changes nothing; and
// the controller goes on serving.
func TestLimits(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	ctx := context.Background()

	src := filepath.Join(c.dir, "huge")
	copyApp(t, src, "v1")
	f, err := os.Create(filepath.Join(src, "cutover.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("name: hello\nrun:\n  command: "); err != nil {
		t.Fatal(err)
	}
	line := []byte(strings.Repeat("x", 1<<20))
	for range 60 {
		if _, err := f.Write(line); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = c.Admin.RegisterApplication(ctx, &cutoverv1.RegisterApplicationRequest{Application: &cutoverv1.Application{SourceDir: src}})
	wantStatus(t, "register a cutover.yaml with a 60 MB run.command", err, codes.InvalidArgument, "cutover.yaml", "65536 bytes", "docs/limits.md")
	if err != nil && len(err.Error()) > 2000 {
		t.Errorf("the refusal is %d bytes long: it must not quote the file", len(err.Error()))
	}
	apps, err := c.Admin.ListApplications(ctx, &cutoverv1.ListApplicationsRequest{})
	if err != nil || len(apps.GetApplications()) != 0 {
		t.Errorf("applications after the refusal: %v (%v), want none", apps.GetApplications(), err)
	}

	_, err = c.Admin.CreateEnvironment(ctx, &cutoverv1.CreateEnvironmentRequest{Environment: &cutoverv1.Environment{
		Name: "big", Windows: []string{strings.Repeat("x", 5<<20)}}})
	wantStatus(t, "a 5 MiB request", err, codes.ResourceExhausted)
	envs, err := c.Admin.ListEnvironments(ctx, &cutoverv1.ListEnvironmentsRequest{})
	if err != nil || len(envs.GetEnvironments()) != 0 {
		t.Errorf("environments after the refusal: %v (%v), want none", envs.GetEnvironments(), err)
	}

	// Within the limits, the same controller registers the application.
	ok := filepath.Join(c.dir, "ok")
	copyApp(t, ok, "v1")
	if name := c.registerApp(ok); name != "hello" {
		t.Errorf("registered %q, want hello", name)
	}
}
