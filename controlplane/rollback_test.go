package controlplane

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

func TestRollbackCommand(t *testing.T) {
	tc := startController(t, t.TempDir())
	d1 := setup(t, tc, "production", false, "hello", "true")
	fe1 := startFakeAgent(t, tc.addr, "fe1", "production", false)
	fe2 := startFakeAgent(t, tc.addr, "fe2", "production", false)
	waitAgents(t, tc, "production", 2)
	start := func(id string) *cutoverv1.Deployment {
		t.Helper()
		if _, err := tc.admin.StartDeployment(ctx(t), &cutoverv1.StartDeploymentRequest{Id: id}); err != nil {
			t.Fatal(err)
		}
		return waitFor(t, tc, id, "DEPLOYED", inState(cutoverv1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED))
	}
	d1 = start(d1.Id)

	// v3: the same application with other content, so another release.
	app, err := tc.admin.GetApplication(ctx(t), &cutoverv1.GetApplicationRequest{Name: "hello"})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(app.SourceDir, "VERSION"), []byte("v3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d2, err := tc.admin.CreateDeployment(ctx(t), &cutoverv1.CreateDeploymentRequest{Environment: "production",
		Applications: []*cutoverv1.ApplicationVersion{{Name: "hello", VersionLabel: "v3"}}})
	if err != nil {
		t.Fatal(err)
	}
	d2 = start(d2.Id)
	if d2.Applications[0].ReleaseId == d1.Applications[0].ReleaseId || d2.Applications[0].PreviousReleaseId != d1.Applications[0].ReleaseId {
		t.Fatalf("v3 = %v", d2.Applications)
	}

	_, err = tc.admin.RollbackDeployment(ctx(t), &cutoverv1.RollbackDeploymentRequest{Id: d1.Id})
	wantRefused(t, err, "now runs release", "from deployment "+d2.Id+", not from "+d1.Id)

	got, err := tc.admin.RollbackDeployment(ctx(t), &cutoverv1.RollbackDeploymentRequest{Id: d2.Id, Reason: "checkout broken"})
	if err != nil || got.State != cutoverv1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED || !strings.Contains(lastEvent(got), "the database is NOT rolled back") ||
		!strings.Contains(lastEvent(got), "checkout broken") {
		t.Fatalf("rollback: %v, %v", got, err)
	}
	got = waitFor(t, tc, d2.Id, "ROLLED_BACK", inState(cutoverv1.DeploymentState_DEPLOYMENT_STATE_ROLLED_BACK))
	for _, a := range got.Agents {
		if a.State != cutoverv1.AgentDeploymentState_AGENT_DEPLOYMENT_STATE_ROLLED_BACK {
			t.Errorf("agent after the rollback: %v", a)
		}
	}
	for _, a := range []*fakeAgent{fe1, fe2} {
		if !slices.Contains(a.received(), "rollback") {
			t.Errorf("agent %s received %v, no rollback", a.name, a.received())
		}
	}
	env, err := tc.admin.GetEnvironment(ctx(t), &cutoverv1.GetEnvironmentRequest{Name: "production"})
	if v := env.GetDeployedVersions()["hello"]; err != nil || v.GetReleaseId() != d1.Applications[0].ReleaseId || v.GetVersionLabel() != "v2" || v.GetDeploymentId() != d1.Id {
		t.Fatalf("deployed_versions after the rollback: %v, %v", env.GetDeployedVersions(), err)
	}
	// d-1 runs again, but nothing ran before it.
	_, err = tc.admin.RollbackDeployment(ctx(t), &cutoverv1.RollbackDeploymentRequest{Id: d1.Id})
	wantRefused(t, err, "ran no release in environment production before deployment "+d1.Id)
	_, err = tc.admin.RollbackDeployment(ctx(t), &cutoverv1.RollbackDeploymentRequest{Id: d2.Id})
	wantRefused(t, err, "is ROLLED_BACK: only a DEPLOYED deployment can be rolled back")
}
