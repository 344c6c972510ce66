package e2e

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// as returns an AdminService client with a new token for subject with
// role in env (every environment if empty).
func (c *cluster) as(subject string, role cutoverv1.Role, env string) cutoverv1.AdminServiceClient {
	c.t.Helper()
	tok, err := c.Token(context.Background(), subject, role, env)
	if err != nil {
		c.t.Fatal(err)
	}
	return c.clientWith(tok)
}

// clientWith returns an AdminService client that sends token (none if
// empty); its connection is closed when the test ends.
func (c *cluster) clientWith(token string) cutoverv1.AdminServiceClient {
	c.t.Helper()
	client, closeConn, err := c.ClientAs(token)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(closeConn)
	return client
}

// TestTrustRoles prepares a deployment in an environment that requires
// approval, as admin carol, and checks each refusal of the roles, with the
// deployment and the environments unchanged after each: a viewer may not
// continue, a deployer may not create an environment, carol may not
// approve what she created and prepared (even with an approver token),
// a token for staging may not read production, no token and a revoked
// token are unauthenticated. Another approver's approval is taken.
func TestTrustRoles(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	ctx := context.Background()
	src := filepath.Join(c.dir, "src")
	copyApp(t, src, "v1")
	if _, err := c.Admin.CreateEnvironment(ctx, &cutoverv1.CreateEnvironmentRequest{Environment: &cutoverv1.Environment{
		Name: "production", TwoStage: true, RequireApproval: true,
		Database: &cutoverv1.Database{Driver: "sqlite", Dsn: filepath.Join(c.dir, "production.db")}}}); err != nil {
		t.Fatal(err)
	}
	c.startAgents("production", "fe-1")
	c.registerApp(src)

	carol := c.as("carol", cutoverv1.Role_ROLE_ADMIN, "")
	d, err := carol.CreateDeployment(ctx, &cutoverv1.CreateDeploymentRequest{Environment: "production",
		Applications: []*cutoverv1.ApplicationVersion{{Name: "hello", VersionLabel: "v1"}}})
	if err != nil {
		t.Fatalf("CreateDeployment as carol: %v", err)
	}
	id := d.GetId()
	if _, err := carol.PrepareDeployment(ctx, &cutoverv1.PrepareDeploymentRequest{Id: id}); err != nil {
		t.Fatalf("PrepareDeployment as carol: %v", err)
	}
	before := c.waitDeployment(id, prepared)
	unchanged := func(what string) {
		t.Helper()
		got, err := c.Admin.GetDeployment(ctx, &cutoverv1.GetDeploymentRequest{Id: id})
		if err != nil {
			t.Fatal(err)
		}
		if got.GetState() != prepared || got.GetApproval() != nil || len(got.GetHistory()) != len(before.GetHistory()) ||
			!got.GetExpireTime().AsTime().Equal(before.GetExpireTime().AsTime()) {
			t.Errorf("after %s the deployment changed:\n%s", what, asJSON(got))
		}
	}

	t.Log("viewer → ContinueDeployment")
	_, err = c.as("vic", cutoverv1.Role_ROLE_VIEWER, "").ContinueDeployment(ctx, &cutoverv1.ContinueDeploymentRequest{Id: id, Force: true, ForceReason: "test"})
	wantStatus(t, "ContinueDeployment as a viewer", err, codes.PermissionDenied, "vic", "viewer")
	unchanged("a viewer's continue")
	c.checkAudited("ContinueDeployment", "PERMISSION_DENIED", "vic")

	t.Log("deployer → CreateEnvironment")
	_, err = c.as("dan", cutoverv1.Role_ROLE_DEPLOYER, "").CreateEnvironment(ctx, &cutoverv1.CreateEnvironmentRequest{
		Environment: &cutoverv1.Environment{Name: "qa"}})
	wantStatus(t, "CreateEnvironment as a deployer", err, codes.PermissionDenied, "dan", "deployer")
	_, err = c.Admin.GetEnvironment(ctx, &cutoverv1.GetEnvironmentRequest{Name: "qa"})
	wantStatus(t, "GetEnvironment qa after a deployer's refused create", err, codes.NotFound)
	c.checkAudited("CreateEnvironment", "PERMISSION_DENIED", "dan")

	t.Log("approver carol → ApproveDeployment of what carol created and prepared")
	_, err = c.as("carol", cutoverv1.Role_ROLE_APPROVER, "").ApproveDeployment(ctx, &cutoverv1.ApproveDeploymentRequest{Id: id, Comment: "lgtm"})
	wantStatus(t, "ApproveDeployment by the subject who created it", err, codes.PermissionDenied, "carol", id)
	unchanged("carol's approval")
	c.checkAudited("ApproveDeployment", "PERMISSION_DENIED", "carol")

	t.Log("viewer of staging → GetDeployment of production")
	_, err = c.as("sam", cutoverv1.Role_ROLE_VIEWER, "staging").GetDeployment(ctx, &cutoverv1.GetDeploymentRequest{Id: id})
	wantStatus(t, "GetDeployment of production with a staging token", err, codes.PermissionDenied, "staging", "production")
	_, err = c.as("sam-deployer", cutoverv1.Role_ROLE_DEPLOYER, "staging").AbortDeployment(ctx, &cutoverv1.AbortDeploymentRequest{Id: id, Reason: "test"})
	wantStatus(t, "AbortDeployment of production with a staging deployer token", err, codes.PermissionDenied, "staging", "production")
	unchanged("a staging deployer's abort")

	t.Log("no token")
	anon := c.clientWith("")
	_, err = anon.GetDeployment(ctx, &cutoverv1.GetDeploymentRequest{Id: id})
	wantStatus(t, "GetDeployment without a token", err, codes.Unauthenticated)
	_, err = anon.AbortDeployment(ctx, &cutoverv1.AbortDeploymentRequest{Id: id})
	wantStatus(t, "AbortDeployment without a token", err, codes.Unauthenticated)
	unchanged("an anonymous abort")

	t.Log("revoked token")
	rita, err := c.Admin.CreateToken(ctx, &cutoverv1.CreateTokenRequest{Subject: "rita", Role: cutoverv1.Role_ROLE_DEPLOYER})
	if err != nil {
		t.Fatal(err)
	}
	ritaClient := c.clientWith(rita.GetToken())
	if _, err := ritaClient.GetDeployment(ctx, &cutoverv1.GetDeploymentRequest{Id: id}); err != nil {
		t.Fatalf("GetDeployment with rita's token before its revocation: %v", err)
	}
	if _, err := c.Admin.RevokeToken(ctx, &cutoverv1.RevokeTokenRequest{Id: rita.GetInfo().GetId()}); err != nil {
		t.Fatal(err)
	}
	_, err = ritaClient.GetDeployment(ctx, &cutoverv1.GetDeploymentRequest{Id: id})
	wantStatus(t, "GetDeployment with a revoked token", err, codes.Unauthenticated)
	_, err = ritaClient.AbortDeployment(ctx, &cutoverv1.AbortDeploymentRequest{Id: id, Reason: "test"})
	wantStatus(t, "AbortDeployment with a revoked token", err, codes.Unauthenticated)
	unchanged("a revoked token's abort")

	envs, err := c.Admin.ListEnvironments(ctx, &cutoverv1.ListEnvironmentsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(envs.GetEnvironments()) != 1 || envs.GetEnvironments()[0].GetName() != "production" {
		t.Errorf("environments after the refusals: %s", asJSON(envs))
	}

	t.Log("another approver")
	approved, err := c.as("dave", cutoverv1.Role_ROLE_APPROVER, "production").ApproveDeployment(ctx, &cutoverv1.ApproveDeploymentRequest{Id: id, Comment: "lgtm"})
	if err != nil {
		t.Fatalf("ApproveDeployment by dave: %v", err)
	}
	if a := approved.GetApproval(); a.GetActor() != "dave" || approved.GetState() != prepared {
		t.Errorf("after dave's approval: %s", asJSON(approved))
	}
	c.checkAudited("ApproveDeployment", "OK", "dave")
}

// TestTrustSourceRoots registers application sources outside the
// controller's source roots, directly and through a link inside a root,
// and replaces a registered source by such a link before a prepare: each
// is refused, and the build command, which would create a canary file,
// never runs.
func TestTrustSourceRoots(t *testing.T) {
	t.Parallel()
	c := newCluster(t) // its source root is the parent of the test's temporary directories
	ctx := context.Background()
	outside, err := os.MkdirTemp("", "cutover-outside-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(outside) })
	outside, err = filepath.EvalSymlinks(outside)
	if err != nil {
		t.Fatal(err)
	}
	canary := filepath.Join(outside, "canary")
	evil := filepath.Join(outside, "evil")
	writeSpec := func(dir, name string) {
		t.Helper()
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		spec := "name: " + name + "\nbuild:\n  command: touch " + canary + "\n  output: .\nrun:\n  command: exec sleep 2147483647\n"
		if err := os.WriteFile(filepath.Join(dir, "cutover.yaml"), []byte(spec), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeSpec(evil, "evil")
	noCanary := func(when string) {
		t.Helper()
		if _, err := os.Stat(canary); err == nil {
			t.Fatalf("%s: the build command of a source outside the roots ran (%s exists)", when, canary)
		}
	}
	apps := func() []string {
		t.Helper()
		resp, err := c.Admin.ListApplications(ctx, &cutoverv1.ListApplicationsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, a := range resp.GetApplications() {
			names = append(names, a.GetName())
		}
		return names
	}

	t.Log("a directory outside the roots")
	_, err = c.Admin.RegisterApplication(ctx, &cutoverv1.RegisterApplicationRequest{Application: &cutoverv1.Application{SourceDir: evil}})
	wantStatus(t, "RegisterApplication outside the source roots", err, codes.InvalidArgument, evil, "source root")
	c.createEnv("staging", true)
	c.startAgents("staging", "fe-1")
	_, err = c.Admin.CreateDeployment(ctx, &cutoverv1.CreateDeploymentRequest{Environment: "staging",
		Applications: []*cutoverv1.ApplicationVersion{{Name: "evil", VersionLabel: "v1"}}})
	if err == nil {
		t.Errorf("CreateDeployment of the refused application was taken")
	}
	noCanary("after the refused registration")

	t.Log("a link inside a root that leads outside")
	link := filepath.Join(c.dir, "link")
	if err := os.Symlink(evil, link); err != nil {
		t.Fatal(err)
	}
	_, err = c.Admin.RegisterApplication(ctx, &cutoverv1.RegisterApplicationRequest{Application: &cutoverv1.Application{SourceDir: link}})
	wantStatus(t, "RegisterApplication of a link out of the source roots", err, codes.InvalidArgument, link, evil)
	if got := apps(); len(got) != 0 {
		t.Errorf("applications after the refusals: %v", got)
	}

	t.Log("a registered source replaced by a link that leads outside, then prepared")
	inside := filepath.Join(c.dir, "sneaky")
	writeSpec(inside, "sneaky")
	// Inside the root its build command would run: make it harmless
	// there, and have the outside copy create the canary.
	if err := os.WriteFile(filepath.Join(inside, "cutover.yaml"),
		[]byte("name: sneaky\nbuild:\n  command: \"true\"\n  output: .\nrun:\n  command: exec sleep 2147483647\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if name := c.registerApp(inside); name != "sneaky" {
		t.Fatalf("registered %q, want sneaky", name)
	}
	writeSpec(filepath.Join(outside, "sneaky"), "sneaky")
	if err := os.Rename(inside, inside+".orig"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "sneaky"), inside); err != nil {
		t.Fatal(err)
	}
	id := c.createDeployment("staging", "sneaky", "v1")
	if _, err := c.Admin.PrepareDeployment(ctx, &cutoverv1.PrepareDeploymentRequest{Id: id}); err != nil {
		t.Logf("PrepareDeployment: %v", err)
	}
	d := c.waitSettled(id, prepared)
	if d.GetState() == prepared {
		t.Errorf("the deployment of a source now outside the roots was prepared:\n%s", asJSON(d))
	} else if !strings.Contains(d.GetError(), "source root") {
		t.Errorf("deployment %s is %s with error %q; want it to say the source is not under a source root", id, d.GetState(), d.GetError())
	}
	noCanary("after the prepare")
	if got := apps(); !slices.Equal(got, []string{"sneaky"}) {
		t.Errorf("applications: %v, want sneaky alone", got)
	}
}
