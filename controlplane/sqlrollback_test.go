package controlplane

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/cutover-dev/cutover/controlplane/migrate/migratetest"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// deployV1ThenV2 deploys v1 (its one migration) and then v2 with files;
// it returns v2's deployment, DEPLOYED, and the database's snapshot
// between the two.
func deployV1ThenV2(t *testing.T, be sqlBackend, files map[string]string) (*testController, *cutoverv1.Deployment, schemaProbe, string) {
	t.Helper()
	tc, d2, db, before, _ := prepareV1ThenV2(t, be, files)
	d2 = continueTo(t, tc, d2.Id, cutoverv1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED)
	return tc, d2, db, before
}

// prepareV1ThenV2 deploys v1 (its one migration) to the front-end fe1 and
// to the others named, then prepares v2 with files; it returns v2's
// deployment, PREPARED, the database's snapshot after v1, and the agents
// (fe1 first).
func prepareV1ThenV2(t *testing.T, be sqlBackend, files map[string]string, others ...string) (*testController, *cutoverv1.Deployment, schemaProbe, string, []*fakeAgent) {
	t.Helper()
	if be.driver == migratetest.Postgres {
		migratetest.RequirePostgres(t)
	}
	dsn := be.fresh(t)
	tc := startController(t, t.TempDir())
	d1, fe1 := sqlSetup(t, tc, be.driver, dsn, map[string]string{"0001_visits.up.sql": sqlV1})
	agents := []*fakeAgent{fe1}
	for _, name := range others {
		agents = append(agents, startFakeAgent(t, tc.addr, name, "production", false))
	}
	waitAgents(t, tc, "production", len(agents))
	prepare(t, tc, d1.Id, cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED)
	continueTo(t, tc, d1.Id, cutoverv1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED)
	before := migratetest.Snapshot(t, be.driver, dsn)
	app, err := tc.admin.GetApplication(ctx(t), &cutoverv1.GetApplicationRequest{Name: "hello"})
	if err != nil {
		t.Fatal(err)
	}
	for name, sql := range files {
		if err := os.WriteFile(filepath.Join(app.SourceDir, "db", name), []byte(sql), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	d2 := createVersion(t, tc, "production", "hello", "v3")
	d2 = prepare(t, tc, d2.Id, cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED)
	return tc, d2, schemaProbe{be.driver, dsn}, before, agents
}

// rollbackTo rolls back id with req's options and waits for it to end.
func rollbackTo(t *testing.T, tc *testController, req *cutoverv1.RollbackDeploymentRequest) *cutoverv1.Deployment {
	t.Helper()
	if _, err := tc.admin.RollbackDeployment(ctx(t), req); err != nil {
		t.Fatal(err)
	}
	return waitFor(t, tc, req.Id, "the rollback's end", func(d *cutoverv1.Deployment) bool {
		return d.State != cutoverv1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED || d.Error != ""
	})
}

// TestRollbackWithDatabase: the contract is undone, the fleet swaps back,
// the expand is undone: schema, rows and bookkeeping as before v2.
func TestRollbackWithDatabase(t *testing.T) {
	eachDatabase(t, func(t *testing.T, be sqlBackend) {
		tc, d2, db, before := deployV1ThenV2(t, be, phaseFiles(false))
		got := rollbackTo(t, tc, &cutoverv1.RollbackDeploymentRequest{Id: d2.Id, WithDatabase: true})
		if got.State != cutoverv1.DeploymentState_DEPLOYMENT_STATE_ROLLED_BACK {
			t.Fatalf("rollback --with-database ended %s: %s", got.State, got.Error)
		}
		if after := migratetest.Snapshot(t, db.driver, db.dsn); after != before {
			t.Errorf("database after rollback --with-database:\n%s\nbefore v2:\n%s", after, before)
		}
		if strings.Join(got.SchemaUndone, ",") != "contract,expand" {
			t.Errorf("schema_undone = %v, want contract then expand", got.SchemaUndone)
		}
		mustMention(t, "history", lastEvent(got), "expand phase was undone")
	})
}

// TestRollbackWithDatabaseIrreversible: refused naming the migration;
// --force needs a reason; --force --reason undoes the rest and is audited.
func TestRollbackWithDatabaseIrreversible(t *testing.T) {
	eachDatabase(t, func(t *testing.T, be sqlBackend) {
		files := phaseFiles(false)
		files["0003_legacy.contract.sql"] = "DROP TABLE legacy;\n-- cutover:irreversible\n"
		tc, d2, db, _ := deployV1ThenV2(t, be, files)

		plain, err := tc.admin.RollbackDeployment(ctx(t), &cutoverv1.RollbackDeploymentRequest{Id: d2.Id, WithDatabase: true})
		wantCode(t, err, codes.FailedPrecondition, "0003_legacy.contract.sql", "marked -- cutover:irreversible", "--force --reason", "nothing was changed")
		if plain != nil {
			t.Fatalf("refused rollback returned %v", plain)
		}
		_, err = tc.admin.RollbackDeployment(ctx(t), &cutoverv1.RollbackDeploymentRequest{Id: d2.Id, WithDatabase: true, Force: true})
		wantCode(t, err, codes.InvalidArgument, "--reason")

		got := rollbackTo(t, tc, &cutoverv1.RollbackDeploymentRequest{Id: d2.Id, WithDatabase: true, Force: true, Reason: "legacy is gone for good"})
		if got.State != cutoverv1.DeploymentState_DEPLOYMENT_STATE_ROLLED_BACK {
			t.Fatalf("forced rollback ended %s: %s", got.State, got.Error)
		}
		if db.column(t, "visits", "agent") || db.table(t, "legacy") {
			t.Errorf("after the forced rollback: agent column %v (want undone), legacy %v (want still dropped): %s", db.column(t, "visits", "agent"), db.table(t, "legacy"), lastEvent(got))
		}
		mustMention(t, "history", lastEvent(got), "forced", "0003_legacy.contract.sql")
		events, err := tc.admin.ListAuditEvents(ctx(t), &cutoverv1.ListAuditEventsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, e := range events.Events {
			found = found || (strings.Contains(e.Summary, `"force":true`) && e.Reason == "legacy is gone for good")
		}
		if !found {
			t.Errorf("no audit entry of the forced rollback with its reason")
		}
	})
}

// TestPlainRollbackWarnsOfSchema: a rollback without --with-database says
// the deployment changed the schema and leaves it.
func TestPlainRollbackWarnsOfSchema(t *testing.T) {
	eachDatabase(t, func(t *testing.T, be sqlBackend) {
		tc, d2, db, _ := deployV1ThenV2(t, be, phaseFiles(false))
		got, err := tc.admin.RollbackDeployment(ctx(t), &cutoverv1.RollbackDeploymentRequest{Id: d2.Id})
		if err != nil {
			t.Fatal(err)
		}
		mustMention(t, "history", lastEvent(got), "WARNING: this deployment changed the schema (2 migration(s))", "--with-database")
		got = waitFor(t, tc, d2.Id, "ROLLED_BACK", inState(cutoverv1.DeploymentState_DEPLOYMENT_STATE_ROLLED_BACK))
		if !db.column(t, "visits", "agent") || db.table(t, "legacy") {
			t.Errorf("a plain rollback changed the schema")
		}
	})
}
