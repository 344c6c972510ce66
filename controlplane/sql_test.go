package controlplane

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/cutover-dev/cutover/controlplane/migrate"
	"github.com/cutover-dev/cutover/controlplane/migrate/migratetest"
	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/controlplane/store"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// TestSQLGeneratedInPrepareRunInContinue: prepare shows the script and
// leaves the database as it was; continue applies it before the swap.
func TestSQLGeneratedInPrepareRunInContinue(t *testing.T) {
	eachDatabase(t, func(t *testing.T, be sqlBackend) {
		tc := startController(t, t.TempDir())
		dsn := be.fresh(t)
		index := sqlIndex
		if be.driver == migratetest.Postgres { // cannot run in a transaction
			index = strings.Replace(index, "CREATE INDEX", "CREATE INDEX CONCURRENTLY", 1)
		}
		d, agent := sqlSetup(t, tc, be.driver, dsn, map[string]string{
			"0001_visits.up.sql": sqlCreateVisits, "0002_agent.up.sql": sqlAddAgent,
			"0003_index.up.sql": migrate.NoTransactionMarker + "\n" + index,
		})
		before := migratetest.Snapshot(t, be.driver, dsn)
		prepare(t, tc, d.Id, cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED)
		if after := migratetest.Snapshot(t, be.driver, dsn); after != before {
			t.Errorf("prepare changed the database:\nbefore:\n%s\nafter:\n%s", before, after)
		}
		plan, err := tc.admin.GetDeploymentPlan(ctx(t), &cutoverv1.GetDeploymentPlanRequest{Id: d.Id})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, m := range plan.PendingMigrations {
			names = append(names, m.Name)
		}
		if !slices.Equal(names, []string{"0001_visits.up.sql", "0002_agent.up.sql", "0003_index.up.sql"}) || !plan.PendingMigrations[2].NoTransaction {
			t.Errorf("pending migrations = %v", plan.PendingMigrations)
		}
		mustMention(t, "the script", plan.Script, "CREATE TABLE visits", "ALTER TABLE visits", index, "COMMIT;", "INSERT INTO cutover_schema_migrations")

		dep := continueTo(t, tc, d.Id, cutoverv1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED)
		if dep.SqlDuration.AsDuration() <= 0 || dep.SwapDuration == nil {
			t.Errorf("sql_duration %v, swap_duration %v: want both measured", dep.SqlDuration, dep.SwapDuration)
		}
		if got := migratetest.Tables(t, be.driver, dsn); !slices.Equal(got, []string{"cutover_schema_migrations", "visits"}) {
			t.Errorf("tables after continue = %v", got)
		}
		if snap := migratetest.Snapshot(t, be.driver, dsn); !strings.Contains(snap, "visits_path") {
			t.Errorf("the no-transaction migration's index is missing:\n%s", snap)
		}
		if got := strings.Join(agent.received(), ","); got != "stage,arm,commit" {
			t.Errorf("the agent received %s, want stage,arm,commit", got)
		}
		// The next deployment has nothing to run, and says so.
		d2, err := tc.admin.CreateDeployment(ctx(t), &cutoverv1.CreateDeploymentRequest{Environment: "production",
			Applications: []*cutoverv1.ApplicationVersion{{Name: "hello", VersionLabel: "v2"}}})
		if err != nil {
			t.Fatal(err)
		}
		prepare(t, tc, d2.Id, cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED)
		plan, err = tc.admin.GetDeploymentPlan(ctx(t), &cutoverv1.GetDeploymentPlanRequest{Id: d2.Id})
		if err != nil || plan.Script != "" || len(plan.PendingMigrations) != 0 {
			t.Errorf("plan of a deployment with nothing to migrate = %v, %v", plan, err)
		}
		// With nothing to run, stage 2 does not connect: an unreachable
		// database does not stop it.
		setDSN(t, tc, be.unreachable)
		continueTo(t, tc, d2.Id, cutoverv1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED)
	})
}

// TestSQLFailureSwapsNothing: a migration in the middle of three that
// fails only on the rows of the environment's database (which prepare's
// schema-only shadow cannot show, and the plan marks) leaves the schema as
// it was, and no agent is sent commit; the deployment is PREPARED again
// (nothing committed).
func TestSQLFailureSwapsNothing(t *testing.T) {
	eachDatabase(t, func(t *testing.T, be sqlBackend) {
		tc := startController(t, t.TempDir())
		dsn := be.fresh(t)
		visits := sqlCreateVisits + "INSERT INTO visits (id, path) VALUES (1, '/'), (2, '/');\n"
		preApply(t, be.driver, dsn, "0001_visits.up.sql", visits)
		broken := "CREATE TABLE audit (id INTEGER);\nCREATE UNIQUE INDEX visits_path_unique ON visits (path);\n"
		d, agent := sqlSetup(t, tc, be.driver, dsn, map[string]string{
			"0001_visits.up.sql": visits, "0002_broken.up.sql": broken, "0003_agent.up.sql": sqlAddAgent,
		})
		prepare(t, tc, d.Id, cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED)
		plan, err := tc.admin.GetDeploymentPlan(ctx(t), &cutoverv1.GetDeploymentPlanRequest{Id: d.Id})
		if err != nil {
			t.Fatal(err)
		}
		if u := plan.GetUnproven(); len(u) != 1 || u[0].GetKind() != "CREATE UNIQUE INDEX" || u[0].GetFile() != "0002_broken.up.sql" {
			t.Errorf("unproven statements: %v", u)
		}
		before := migratetest.Snapshot(t, be.driver, dsn)
		dep := continueBack(t, tc, d.Id)
		mustMention(t, "the failure", lastEvent(dep), "0002_broken.up.sql", "statement 2 (line 2)", "visits", "rolled back",
			"no agent was sent commit", "the database is as it was")
		waitReceived(t, agent, "disarm")
		if got := strings.Join(agent.received(), ","); got != "stage,arm,disarm" { // arm and disarm change nothing that runs
			t.Errorf("the agent received %s, want stage,arm,disarm", got)
		}
		if after := migratetest.Snapshot(t, be.driver, dsn); after != before {
			t.Errorf("the failed migration left changes behind:\nbefore:\n%s\nafter:\n%s", before, after)
		}
	})
}

// TestSQLUnreachableStaysPrepared: continue with the database unreachable
// changes nothing and leaves the deployment PREPARED; with the database
// back, continue again deploys it.
func TestSQLUnreachableStaysPrepared(t *testing.T) {
	eachDatabase(t, func(t *testing.T, be sqlBackend) {
		tc := startController(t, t.TempDir())
		dsn := be.fresh(t)
		d, agent := sqlSetup(t, tc, be.driver, dsn, map[string]string{"0001_visits.up.sql": sqlCreateVisits})
		prepare(t, tc, d.Id, cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED)
		setDSN(t, tc, be.unreachable)
		dep := continueBack(t, tc, d.Id)
		mustMention(t, "the failure", lastEvent(dep), "the SQL script failed", "the database is as it was")
		waitReceived(t, agent, "disarm")
		setDSN(t, tc, dsn)
		continueTo(t, tc, d.Id, cutoverv1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED)
		if got := strings.Join(agent.received(), ","); got != "stage,arm,disarm,arm,commit" {
			t.Errorf("the agent received %s, want stage,arm,disarm,arm,commit", got)
		}
		if got := migratetest.Tables(t, be.driver, dsn); !slices.Equal(got, []string{"cutover_schema_migrations", "visits"}) {
			t.Errorf("tables after the second continue = %v", got)
		}
	})
}

// TestSQLDatabaseChangedSincePrepare: continue refuses to run a plan made
// from rows that changed, and swaps nothing.
func TestSQLDatabaseChangedSincePrepare(t *testing.T) {
	eachDatabase(t, func(t *testing.T, be sqlBackend) {
		tc := startController(t, t.TempDir())
		dsn := be.fresh(t)
		d, agent := sqlSetup(t, tc, be.driver, dsn, map[string]string{"0001_visits.up.sql": sqlCreateVisits})
		prepare(t, tc, d.Id, cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED)
		// Someone else migrates the database meanwhile.
		db := migrate.DB{Driver: be.driver, DSN: dsn}
		other := []migrate.AppFiles{{Application: "billing", Files: mustFiles(t, "0001_invoices.up.sql", "CREATE TABLE invoices (id INTEGER);")}}
		p, err := migrate.Generate(ctx(t), db, "manual-1", other)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := migrate.Execute(ctx(t), db, p); err != nil {
			t.Fatal(err)
		}
		before := migratetest.Snapshot(t, be.driver, dsn)
		dep := continueTo(t, tc, d.Id, cutoverv1.DeploymentState_DEPLOYMENT_STATE_FAILED)
		mustMention(t, "the error", dep.Error, "the database changed since prepare", "billing", "manual-1", "prepare again")
		if after := migratetest.Snapshot(t, be.driver, dsn); after != before {
			t.Errorf("a refused plan changed the database:\nbefore:\n%s\nafter:\n%s", before, after)
		}
		waitReceived(t, agent, "disarm")
		if got := strings.Join(agent.received(), ","); got != "stage,arm,disarm" { // arm and disarm change nothing that runs
			t.Errorf("the agent received %s, want stage,arm,disarm", got)
		}
	})
}

// TestSQLDriftFailsPrepare: an applied migration that the release changed
// fails stage 1 before anything is staged.
func TestSQLDriftFailsPrepare(t *testing.T) {
	eachDatabase(t, func(t *testing.T, be sqlBackend) {
		tc := startController(t, t.TempDir())
		dsn := be.fresh(t)
		db := migrate.DB{Driver: be.driver, DSN: dsn}
		applied := []migrate.AppFiles{{Application: "hello", Files: mustFiles(t, "0001_visits.up.sql", "CREATE TABLE visits (id INTEGER);")}}
		p, err := migrate.Generate(ctx(t), db, "d-old", applied)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := migrate.Execute(ctx(t), db, p); err != nil {
			t.Fatal(err)
		}
		d, agent := sqlSetup(t, tc, be.driver, dsn, map[string]string{"0001_visits.up.sql": sqlCreateVisits})
		before := migratetest.Snapshot(t, be.driver, dsn)
		dep := prepare(t, tc, d.Id, cutoverv1.DeploymentState_DEPLOYMENT_STATE_FAILED)
		mustMention(t, "the error", dep.Error, "migration 1 changed after it was applied", "nothing was sent to the agents")
		if got := agent.received(); len(got) != 0 {
			t.Errorf("the agent received %v", got)
		}
		if after := migratetest.Snapshot(t, be.driver, dsn); after != before {
			t.Errorf("a failed prepare changed the database")
		}
		_, err = tc.admin.GetDeploymentPlan(ctx(t), &cutoverv1.GetDeploymentPlanRequest{Id: d.Id})
		if status.Code(err) != codes.FailedPrecondition {
			t.Errorf("GetDeploymentPlan of a deployment that failed before its plan: %v, want FailedPrecondition", err)
		}
	})
}

// TestSQLNeedsADatabase: migrations in an environment without a database
// fail stage 1 and say how to set one; the DSN is never shown back.
func TestSQLNeedsADatabase(t *testing.T) {
	tc := startController(t, t.TempDir())
	d, agent := sqlSetup(t, tc, "", "", map[string]string{"0001_visits.up.sql": sqlCreateVisits})
	dep := prepare(t, tc, d.Id, cutoverv1.DeploymentState_DEPLOYMENT_STATE_FAILED)
	mustMention(t, "the error", dep.Error, "hello (1)", "has no database", "--db-driver", "--db-dsn")
	if got := agent.received(); len(got) != 0 {
		t.Errorf("the agent received %v", got)
	}
	env, err := tc.admin.UpdateEnvironment(ctx(t), &cutoverv1.UpdateEnvironmentRequest{
		Environment:       &cutoverv1.Environment{Name: "production", Database: &cutoverv1.Database{Driver: "postgres", Dsn: "postgres://app:s3cret@127.0.0.1:1/app"}},
		UpdateMask:        &fieldmaskpb.FieldMask{Paths: []string{"database"}},
		SkipDatabaseCheck: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := env.GetDatabase().GetDsn(); got != "postgres://app:xxxxx@127.0.0.1:1/app" {
		t.Errorf("UpdateEnvironment shows the dsn as %q", got)
	}
	_, err = tc.admin.UpdateEnvironment(ctx(t), &cutoverv1.UpdateEnvironmentRequest{
		Environment: &cutoverv1.Environment{Name: "production", Database: &cutoverv1.Database{Driver: "mysql", Dsn: "x"}},
		UpdateMask:  &fieldmaskpb.FieldMask{Paths: []string{"database.driver"}},
	})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("an unknown driver: %v, want InvalidArgument", err)
	}
	// An unreachable database fails the next prepare, without the password.
	d2, err := tc.admin.CreateDeployment(ctx(t), &cutoverv1.CreateDeploymentRequest{Environment: "production",
		Applications: []*cutoverv1.ApplicationVersion{{Name: "hello", VersionLabel: "v2"}}})
	if err != nil {
		t.Fatal(err)
	}
	dep = prepare(t, tc, d2.Id, cutoverv1.DeploymentState_DEPLOYMENT_STATE_FAILED)
	mustMention(t, "the error", dep.Error, "generating the SQL script", "xxxxx")
	if strings.Contains(dep.Error, "s3cret") {
		t.Errorf("the error shows the password: %s", dep.Error)
	}
}

// TestSQLNotRunTwiceAfterACrash: the controller died after the database
// committed the script but before it recorded that; the restarted
// controller does not run it again, and swaps.
func TestSQLNotRunTwiceAfterACrash(t *testing.T) {
	dataDir := t.TempDir()
	tc := startController(t, dataDir)
	dsn := migratetest.SQLiteDSN(t)
	d, agent := sqlSetup(t, tc, migratetest.SQLite, dsn, map[string]string{"0001_visits.up.sql": sqlCreateVisits, "0002_agent.up.sql": sqlAddAgent})
	prepare(t, tc, d.Id, cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED)
	tc.stop(t)

	// What the dead controller left: ACTIVATING, SQL not recorded, and the
	// database migrated by its run.
	s, err := store.Open(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	err = s.Update(func(tx model.Tx) error {
		dep, err := tx.Deployment(d.Id)
		if err != nil {
			return err
		}
		if dep.SQLPending != 2 {
			t.Errorf("SQLPending = %d, want 2", dep.SQLPending)
		}
		dep.State, dep.ActivateTime = model.Activating, time.Now()
		dep.History = append(dep.History, model.Transition{State: model.Activating, Time: dep.ActivateTime, Actor: "test"})
		raw, err := tx.SQLPlan(d.Id)
		if err != nil {
			return err
		}
		var plan migrate.Plan
		if err := json.Unmarshal(raw, &plan); err != nil {
			return err
		}
		if _, err := migrate.Execute(context.Background(), migrate.DB{Driver: migratetest.SQLite, DSN: dsn}, &plan); err != nil {
			return err
		}
		return tx.PutDeployment(dep)
	})
	s.Close()
	if err != nil {
		t.Fatal(err)
	}

	tc = startController(t, dataDir)
	agent.setAddr(tc.addr)
	dep := waitFor(t, tc, d.Id, "a final state", isFinalOr(cutoverv1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED))
	if dep.State != cutoverv1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED {
		t.Fatalf("resumed deployment ended %s: %s", dep.State, dep.Error)
	}
	pool := migratetest.Connect(t, migratetest.SQLite, dsn)
	if got := migratetest.Column(t, pool, "SELECT CAST(version AS TEXT) || ' ' || deployment_id FROM cutover_schema_migrations ORDER BY version"); !slices.Equal(got, []string{"1 " + d.Id, "2 " + d.Id}) {
		t.Errorf("bookkeeping rows = %q", got)
	}
	if got := strings.Join(agent.received(), ","); got != "stage,commit" { // a record from before the arm step: commit arms too
		t.Errorf("the agent received %s, want stage,commit", got)
	}
}

// TestSQLBoundedByTheWindow: the SQL part of stage 2 may not outlast the
// deployment window open now; a migration still running when it closes is
// cancelled, and the deployment fails before any swap, saying why.
func TestSQLBoundedByTheWindow(t *testing.T) {
	dsn := migratetest.FreshPostgres(t)
	clock := newFakeClock(at("2026-03-02T03:59:57Z")) // Monday, 3s before the window closes
	tc := startControllerWithClock(t, t.TempDir(), clock.Now)
	// Slow on the rows of the environment's database only: the shadow
	// prepare checks it on has none.
	preApply(t, migratetest.Postgres, dsn, "0001_visits.up.sql", sqlCreateVisits+"INSERT INTO visits (id, path) VALUES (1, '/');\n")
	d, agent := sqlSetup(t, tc, migratetest.Postgres, dsn, map[string]string{
		"0001_visits.up.sql": sqlCreateVisits + "INSERT INTO visits (id, path) VALUES (1, '/');\n",
		"0002_slow.up.sql":   "SELECT pg_sleep(60) FROM visits;\n"})
	if _, err := tc.admin.UpdateEnvironment(ctx(t), &cutoverv1.UpdateEnvironmentRequest{
		Environment: &cutoverv1.Environment{Name: "production", Windows: []string{"Mon-Fri 02:00-04:00 UTC"}},
		UpdateMask:  &fieldmaskpb.FieldMask{Paths: []string{"windows"}},
	}); err != nil {
		t.Fatal(err)
	}
	prepare(t, tc, d.Id, cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED)
	start := time.Now()
	dep := continueBack(t, tc, d.Id) // nothing committed: PREPARED again
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("the SQL part ran %s, past the window's end (3s away)", took)
	}
	t.Logf("failure: %s", lastEvent(dep))
	mustMention(t, "the failure", lastEvent(dep), "0002_slow.up.sql", "may take 3s: the deployment window closes at 04:00:00 UTC", "no agent was sent commit",
		"the database is as it was")
	waitReceived(t, agent, "disarm")
	if got := strings.Join(agent.received(), ","); got != "stage,arm,disarm" { // arm and disarm change nothing that runs
		t.Errorf("the agent received %s, want stage,arm,disarm", got)
	}
}

// TestSQLSingleStage: start runs the SQL part of its stage 2 too, before
// the swap.
func TestSQLSingleStage(t *testing.T) {
	eachDatabase(t, func(t *testing.T, be sqlBackend) {
		tc := startController(t, t.TempDir())
		dsn := be.fresh(t)
		d, agent := sqlSetup(t, tc, be.driver, dsn, map[string]string{"0001_visits.up.sql": sqlCreateVisits})
		if _, err := tc.admin.StartDeployment(ctx(t), &cutoverv1.StartDeploymentRequest{Id: d.Id}); err != nil {
			t.Fatal(err)
		}
		dep := waitFor(t, tc, d.Id, "a final state", isFinalOr(cutoverv1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED))
		if dep.State != cutoverv1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED || dep.SqlDuration.AsDuration() <= 0 {
			t.Fatalf("started deployment ended %s with sql_duration %v: %s", dep.State, dep.SqlDuration, dep.Error)
		}
		if got := migratetest.Tables(t, be.driver, dsn); !slices.Contains(got, "visits") {
			t.Errorf("tables = %v, want visits among them", got)
		}
		if got := strings.Join(agent.received(), ","); got != "stage,arm,commit" {
			t.Errorf("the agent received %s, want stage,arm,commit", got)
		}
		var activating string
		for _, h := range dep.History {
			if h.State == cutoverv1.DeploymentState_DEPLOYMENT_STATE_ACTIVATING {
				activating = h.Message
			}
		}
		mustMention(t, "the ACTIVATING transition", activating, "the SQL script (1 migration(s)), then commit the swap")
	})
}
