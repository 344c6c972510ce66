package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"

	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// TestBadInput sends the real controller requests it must refuse, and
// checks the codes, the messages and that nothing changed.
func TestBadInput(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	ctx := context.Background()
	src := filepath.Join(c.dir, "src")
	copyApp(t, src, "v1")

	c.createEnv("single", false)
	c.registerApp(src)
	d := c.createDeployment("single", "hello", "v1")

	tests := []struct {
		name  string
		call  func() error
		code  codes.Code
		words []string
	}{
		{"unknown environment", func() error {
			_, err := c.Admin.GetEnvironment(ctx, &cutoverv1.GetEnvironmentRequest{Name: "nope"})
			return err
		}, codes.NotFound, []string{"nope"}},
		{"unknown application", func() error {
			_, err := c.Admin.GetApplication(ctx, &cutoverv1.GetApplicationRequest{Name: "nope"})
			return err
		}, codes.NotFound, []string{"nope"}},
		{"unknown deployment", func() error {
			_, err := c.Admin.GetDeployment(ctx, &cutoverv1.GetDeploymentRequest{Id: "d-999"})
			return err
		}, codes.NotFound, []string{"d-999"}},
		{"prepare unknown deployment", func() error {
			_, err := c.Admin.PrepareDeployment(ctx, &cutoverv1.PrepareDeploymentRequest{Id: "d-999"})
			return err
		}, codes.NotFound, []string{"d-999"}},
		{"deployment to unknown environment", func() error {
			_, err := c.Admin.CreateDeployment(ctx, &cutoverv1.CreateDeploymentRequest{
				Environment: "nope", Applications: []*cutoverv1.ApplicationVersion{{Name: "hello", VersionLabel: "v1"}},
			})
			return err
		}, codes.NotFound, []string{"nope"}},
		{"deployment of unknown application", func() error {
			_, err := c.Admin.CreateDeployment(ctx, &cutoverv1.CreateDeploymentRequest{
				Environment: "single", Applications: []*cutoverv1.ApplicationVersion{{Name: "nope", VersionLabel: "v1"}},
			})
			return err
		}, codes.NotFound, []string{"nope"}},
		{"environment name not a DNS label", func() error {
			_, err := c.Admin.CreateEnvironment(ctx, &cutoverv1.CreateEnvironmentRequest{
				Environment: &cutoverv1.Environment{Name: "Bad_Name"},
			})
			return err
		}, codes.InvalidArgument, []string{"Bad_Name"}},
		{"empty environment name", func() error {
			_, err := c.Admin.CreateEnvironment(ctx, &cutoverv1.CreateEnvironmentRequest{Environment: &cutoverv1.Environment{}})
			return err
		}, codes.InvalidArgument, nil},
		{"environment exists", func() error {
			_, err := c.Admin.CreateEnvironment(ctx, &cutoverv1.CreateEnvironmentRequest{
				Environment: &cutoverv1.Environment{Name: "single", TwoStage: true},
			})
			return err
		}, codes.AlreadyExists, []string{"single"}},
		{"continue a PLANNED deployment", func() error {
			_, err := c.Admin.ContinueDeployment(ctx, &cutoverv1.ContinueDeploymentRequest{Id: d})
			return err
		}, codes.FailedPrecondition, []string{d, "PLANNED"}},
		{"prepare in a single-stage environment", func() error {
			_, err := c.Admin.PrepareDeployment(ctx, &cutoverv1.PrepareDeploymentRequest{Id: d})
			return err
		}, codes.FailedPrecondition, []string{"two"}},
		{"start with no agent connected", func() error {
			_, err := c.Admin.StartDeployment(ctx, &cutoverv1.StartDeploymentRequest{Id: d})
			return err
		}, codes.FailedPrecondition, []string{"single"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantStatus(t, tt.name, tt.call(), tt.code, tt.words...)
		})
	}

	// Nothing changed.
	got, err := c.Admin.GetDeployment(ctx, &cutoverv1.GetDeploymentRequest{Id: d})
	if err != nil || got.GetState() != planned {
		t.Errorf("deployment %s after the refusals: %s (%v), want PLANNED", d, got.GetState(), err)
	}
	envs, err := c.Admin.ListEnvironments(ctx, &cutoverv1.ListEnvironmentsRequest{})
	if err != nil || len(envs.GetEnvironments()) != 1 || envs.GetEnvironments()[0].GetTwoStage() {
		t.Errorf("environments after the refusals: %v (%v), want only single, single stage", envs.GetEnvironments(), err)
	}
	list, err := c.Admin.ListDeployments(ctx, &cutoverv1.ListDeploymentsRequest{})
	if err != nil || len(list.GetDeployments()) != 1 {
		t.Errorf("deployments after the refusals: %v (%v), want only %s", list.GetDeployments(), err, d)
	}
}

// TestCutoverctl runs the real cutoverctl binary: success with tables and
// JSON, and on errors a non-zero exit status with the server's code and
// message.
func TestCutoverctl(t *testing.T) {
	t.Parallel()
	examples, _ := filepath.Abs(filepath.Join("..", "examples"))
	c := newCluster(t, "--source-root", examples) // registers ../examples/hello by a relative path

	code, out, errOut := c.ctl("env", "create", "smoke", "--two-stage", "--window", "Mon-Fri 02:00-04:00 Europe/Lisbon")
	if code != 0 {
		t.Fatalf("env create: exit %d\n%s%s", code, out, errOut)
	}
	if !strings.Contains(out, "smoke") {
		t.Errorf("env create printed:\n%s", out)
	}

	// The address may come from CUTOVER_CONTROLLER.
	code, out, errOut = runCtl(t, []string{"-o", "json", "env", "get", "smoke"}, c.CtlEnv())
	if code != 0 {
		t.Fatalf("env get -o json: exit %d\n%s", code, errOut)
	}
	var env cutoverv1.Environment
	if err := protojson.Unmarshal([]byte(out), &env); err != nil {
		t.Fatalf("env get -o json printed %q: %v", out, err)
	}
	if env.GetName() != "smoke" || !env.GetTwoStage() || len(env.GetWindows()) != 1 {
		t.Errorf("env get -o json = %s", out)
	}

	code, _, errOut = c.ctl("env", "update", "smoke", "--two-stage=false")
	if code != 0 {
		t.Fatalf("env update: exit %d\n%s", code, errOut)
	}
	code, out, _ = c.ctl("env", "list")
	if code != 0 || !strings.Contains(out, "smoke") || !strings.Contains(out, "TWO-STAGE") {
		t.Errorf("env list: exit %d\n%s", code, out)
	}
	if f := strings.Fields(strings.Split(out, "\n")[1]); len(f) < 2 || f[1] != "no" {
		t.Errorf("env list after update --two-stage=false:\n%s", out)
	}

	// The database's DSN is stored, and never shown back with its password
	// (--no-check: db.internal does not exist).
	code, out, errOut = c.ctl("env", "update", "smoke", "--db-driver", "postgres", "--db-dsn", "postgres://app:s3cret@db.internal/app", "--db-lock-timeout", "5s", "--no-check")
	if code != 0 || strings.Contains(out+errOut, "s3cret") || !strings.Contains(out, "postgres://app:xxxxx@db.internal/app") {
		t.Errorf("env update --db-*: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = c.ctl("env", "get", "smoke")
	if code != 0 || strings.Contains(out, "s3cret") || !strings.Contains(out, "DATABASE") || !strings.Contains(out, "postgres postgres://app:xxxxx@db.internal/app") {
		t.Errorf("env get after --db-*: exit %d\n%s%s", code, out, errOut)
	}
	code, _, errOut = c.ctl("env", "update", "smoke", "--db-driver", "oracle")
	if code == 0 || !strings.Contains(errOut, "InvalidArgument") || !strings.Contains(errOut, "oracle") {
		t.Errorf("env update --db-driver oracle: exit %d\n%s", code, errOut)
	}
	if log := c.Controller.Tail(1000); strings.Contains(log, "s3cret") {
		t.Errorf("the controller's log shows the password:\n%s", log)
	}

	// A relative source directory is sent as an absolute path.
	code, out, errOut = c.ctl("-o", "json", "app", "register", filepath.Join("..", "examples", "hello"))
	if code != 0 {
		t.Fatalf("app register: exit %d\n%s", code, errOut)
	}
	var app cutoverv1.Application
	if err := protojson.Unmarshal([]byte(out), &app); err != nil {
		t.Fatalf("app register -o json printed %q: %v", out, err)
	}
	wantDir, _ := filepath.Abs(filepath.Join("..", "examples", "hello"))
	if app.GetName() != "hello" || app.GetSourceDir() != wantDir {
		t.Errorf("app register: name %q source_dir %q, want hello and %s", app.GetName(), app.GetSourceDir(), wantDir)
	}

	refusals := []struct {
		args  []string
		words []string
	}{
		{[]string{"env", "get", "nope"}, []string{"error: NotFound:", "nope"}},
		{[]string{"deploy", "get", "d-999"}, []string{"error: NotFound:", "d-999"}},
		{[]string{"env", "create", "Bad_Name"}, []string{"error: InvalidArgument:", "Bad_Name"}},
		{[]string{"deploy", "create", "--env", "smoke", "--app", "nope=v1"}, []string{"error: NotFound:", "nope"}},
		{[]string{"deploy", "create", "--env", "smoke", "--app", "hello"}, []string{"NAME=LABEL"}},
		{[]string{"--controller", "127.0.0.1:1", "env", "list"}, []string{"error: Unavailable:"}},
	}
	for _, r := range refusals {
		code, out, errOut := c.ctl(r.args...)
		if code == 0 {
			t.Errorf("cutoverctl %v: exit 0, want non-zero\n%s", r.args, out)
		}
		for _, w := range r.words {
			if !strings.Contains(errOut, w) {
				t.Errorf("cutoverctl %v: stderr %q lacks %q", r.args, errOut, w)
			}
		}
	}
}

// TestHostileBuildRefused registers applications whose build output holds a
// symlink that leads outside the release (absolute, relative, through
// another symlink): each deployment fails naming the link, and the agent
// stages nothing.
func TestHostileBuildRefused(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	ctx := context.Background()
	c.createEnv("prod", true)
	c.startAgents("prod", "fe-1")
	builds := []struct {
		app, link, command string
	}{
		{"evil-abs", "leak", "ln -s /etc/passwd out/leak"},
		{"evil-rel", "up", "mkdir out/sub && ln -s ../../.. out/sub/up"},
		{"evil-chain", "a", "ln -s b out/a && ln -s ../.. out/b"},
	}
	for _, b := range builds {
		src := filepath.Join(c.dir, b.app)
		if err := os.MkdirAll(src, 0o755); err != nil {
			t.Fatal(err)
		}
		spec := fmt.Sprintf("name: %s\nbuild:\n  command: mkdir -p out && echo hi > out/index.html && %s\n  output: out\nrun:\n  command: sleep 1000\n", b.app, b.command)
		if err := os.WriteFile(filepath.Join(src, "cutover.yaml"), []byte(spec), 0o644); err != nil {
			t.Fatal(err)
		}
		c.registerApp(src)
		d := c.createDeployment("prod", b.app, "v1")
		if _, err := c.Admin.PrepareDeployment(ctx, &cutoverv1.PrepareDeploymentRequest{Id: d}); err != nil {
			t.Fatalf("PrepareDeployment(%s): %v", b.app, err)
		}
		got := c.waitDeployment(d, failed)
		if !strings.Contains(got.GetError(), b.link) {
			t.Errorf("%s: FAILED deployment's error %q does not name the symlink %s", b.app, got.GetError(), b.link)
		}
		entries, _ := os.ReadDir(filepath.Join(c.Agents[0].Root, b.app, "releases"))
		if len(entries) != 0 {
			t.Errorf("%s: agent staged %d entries for a refused build", b.app, len(entries))
		}
	}
	agents, err := c.Admin.ListAgents(ctx, &cutoverv1.ListAgentsRequest{Environment: "prod"})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range agents.GetAgents() {
		for _, app := range a.GetApplications() {
			if len(app.GetStagedReleaseIds()) != 0 || app.GetRunningReleaseId() != "" {
				t.Errorf("agent %s holds %v after refused builds", a.GetName(), app)
			}
		}
	}
}
