package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// TestPackageStep drives the package step (cutover.yaml `package:`) over
// the real binaries: it runs after a deployment that changed a file
// matching when_changed, and `cutoverctl deploy package` downloads what it
// produced; after one that changed only other files it does not run,
// `deploy get` says so and `deploy package` fails with FailedPrecondition.
func TestPackageStep(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	ctx := context.Background()
	src := filepath.Join(c.dir, "src")
	copyApp(t, src, "v1")
	write := func(name, body string) {
		t.Helper()
		p := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	spec, err := os.ReadFile(filepath.Join(src, "cutover.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	write("cutover.yaml", string(spec)+"package: {command: \"sh -c 'mkdir -p pkg && echo mobile $(cat mobile/app.js) > pkg/app.pkg'\", when_changed: [mobile/**], output: pkg/app.pkg}\n")
	write("mobile/app.js", "one")
	c.createEnv("demo", false)
	c.startAgents("demo", "fe-1")
	c.registerApp(src)

	deploy := func(label string) *cutoverv1.Deployment {
		t.Helper()
		id := c.createDeployment("demo", "hello", label)
		if _, err := c.Admin.StartDeployment(ctx, &cutoverv1.StartDeploymentRequest{Id: id}); err != nil {
			t.Fatal(err)
		}
		c.waitDeployment(id, deployed)
		var d *cutoverv1.Deployment
		c.waitFor(deployDeadline, "the package step of "+id+" settled", func() error {
			d, err = c.Admin.GetDeployment(ctx, &cutoverv1.GetDeploymentRequest{Id: id})
			if err != nil {
				return err
			}
			if p := d.GetPackage(); p == nil || !(p.GetRan() || p.GetError() != "" || len(p.GetChanged()) == 0) {
				return fmt.Errorf("package step: %v", p)
			}
			return nil
		})
		return d
	}
	deploy("v1")

	t.Log("v2 changes mobile/app.js: the package step runs, the file is downloadable")
	writeVersion(t, src, "v2")
	write("mobile/app.js", "two")
	d2 := deploy("v2")
	if p := d2.GetPackage(); !p.GetRan() || p.GetError() != "" || strings.Join(p.GetChanged(), ",") != "mobile/app.js" {
		t.Fatalf("package step of %s = %v, want run on mobile/app.js", d2.GetId(), p)
	}
	out := filepath.Join(c.dir, "out.pkg")
	code, stdout, stderr := c.ctl("deploy", "package", d2.GetId(), "-o", out)
	if code != 0 || !strings.Contains(stderr, "written to "+out) {
		t.Fatalf("cutoverctl deploy package %s -o %s: exit %d\n%s%s", d2.GetId(), out, code, stdout, stderr)
	}
	if got, err := os.ReadFile(out); err != nil || string(got) != "mobile two\n" {
		t.Fatalf("downloaded package = %q, %v; want %q", got, err, "mobile two\n")
	}

	t.Log("v3 changes only VERSION: the package step does not run")
	writeVersion(t, src, "v3")
	d3 := deploy("v3")
	if p := d3.GetPackage(); p.GetRan() || len(p.GetChanged()) != 0 {
		t.Fatalf("package step of %s = %v, want not run", d3.GetId(), p)
	}
	code, stdout, stderr = c.ctl("deploy", "get", d3.GetId())
	if code != 0 || !strings.Contains(stdout, "not run, no file matching when_changed differs from the previous release") {
		t.Errorf("cutoverctl deploy get %s: exit %d\n%s%s", d3.GetId(), code, stdout, stderr)
	}
	out3 := filepath.Join(c.dir, "out3.pkg")
	code, stdout, stderr = c.ctl("deploy", "package", d3.GetId(), "-o", out3)
	if code == 0 || !strings.Contains(stderr, "FailedPrecondition") || !strings.Contains(stderr, "the package step did not run") {
		t.Errorf("cutoverctl deploy package %s: exit %d, want a FailedPrecondition saying the step did not run\n%s%s", d3.GetId(), code, stdout, stderr)
	}
	if _, err := os.Stat(out3); !os.IsNotExist(err) {
		t.Errorf("a refused download left %s: %v", out3, err)
	}
}
