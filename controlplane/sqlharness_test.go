package controlplane

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/cutover-dev/cutover/controlplane/migrate"
	"github.com/cutover-dev/cutover/controlplane/migrate/migratetest"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// What the controller's SQL tests (sql_test.go, shadow_test.go) share: the
// databases they run on, the application with migrations they deploy, and
// the steps they drive a deployment through.

const (
	sqlCreateVisits = "CREATE TABLE visits (id INTEGER PRIMARY KEY, path TEXT NOT NULL);\n"
	sqlAddAgent     = "ALTER TABLE visits ADD COLUMN agent TEXT;\n"
	sqlBroken       = "CREATE TABLE audit (id INTEGER);\nINSERT INTO no_such_table VALUES (1);\n"
	sqlIndex        = "CREATE INDEX visits_path ON visits (path);\n"
)

// sqlBackend is a database the controller's SQL tests run against.
type sqlBackend struct {
	driver string
	fresh  func(t testing.TB) string // a new, empty database's DSN
	// unreachable is a DSN of this driver that cannot be connected to.
	unreachable string
}

// eachDatabase runs f on SQLite and on PostgreSQL (see
// migratetest.RequirePostgres for when PostgreSQL is skipped).
func eachDatabase(t *testing.T, f func(t *testing.T, be sqlBackend)) {
	t.Run("sqlite", func(t *testing.T) {
		f(t, sqlBackend{migratetest.SQLite, migratetest.SQLiteDSN, "/nonexistent/dir/app.db"})
	})
	t.Run("postgres", func(t *testing.T) {
		f(t, sqlBackend{migratetest.Postgres, migratetest.FreshPostgres, "postgres://app:pw@127.0.0.1:1/app"})
	})
}

// setDSN sets the dsn of sqlSetup's environment, without the database
// check (the tests set unreachable ones on purpose).
func setDSN(t *testing.T, tc *testController, dsn string) {
	t.Helper()
	if _, err := tc.admin.UpdateEnvironment(ctx(t), &cutoverv1.UpdateEnvironmentRequest{
		Environment:       &cutoverv1.Environment{Name: "production", Database: &cutoverv1.Database{Dsn: dsn}},
		UpdateMask:        &fieldmaskpb.FieldMask{Paths: []string{"database.dsn"}},
		SkipDatabaseCheck: true,
	}); err != nil {
		t.Fatal(err)
	}
}

// sqlSetup creates environment env (two-stage) with the database driver,dsn
// (none when driver is empty), registers application app whose release
// holds the migration files (name → SQL) in db/, starts one fake agent, and
// returns a planned deployment.
func sqlSetup(t *testing.T, tc *testController, driver, dsn string, files map[string]string) (*cutoverv1.Deployment, *fakeAgent) {
	t.Helper()
	c := ctx(t)
	env := &cutoverv1.Environment{Name: "production", TwoStage: true}
	if driver != "" {
		env.Database = &cutoverv1.Database{Driver: driver, Dsn: dsn, LockTimeout: durationpb.New(5 * time.Second)}
	}
	if _, err := tc.admin.CreateEnvironment(c, &cutoverv1.CreateEnvironmentRequest{Environment: env}); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "hello")
	spec := "name: hello\nbuild:\n  command: true\n  output: .\nrun:\n  command: ./run.sh\nmigrations: db\n"
	all := map[string]string{"cutover.yaml": spec, "run.sh": "#!/bin/sh\nexec sleep 1000\n"}
	for name, sql := range files {
		all[filepath.Join("db", name)] = sql
	}
	if err := os.MkdirAll(filepath.Join(dir, "db"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range all {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tc.admin.RegisterApplication(c, &cutoverv1.RegisterApplicationRequest{Application: &cutoverv1.Application{SourceDir: dir}}); err != nil {
		t.Fatal(err)
	}
	d, err := tc.admin.CreateDeployment(c, &cutoverv1.CreateDeploymentRequest{Environment: "production",
		Applications: []*cutoverv1.ApplicationVersion{{Name: "hello", VersionLabel: "v2"}}})
	if err != nil {
		t.Fatal(err)
	}
	a := startFakeAgent(t, tc.addr, "fe1", "production", false)
	waitAgents(t, tc, "production", 1)
	return d, a
}

// prepare runs stage 1 of id and waits for want (or a final state, which
// must be want).
func prepare(t *testing.T, tc *testController, id string, want cutoverv1.DeploymentState) *cutoverv1.Deployment {
	t.Helper()
	if _, err := tc.admin.PrepareDeployment(ctx(t), &cutoverv1.PrepareDeploymentRequest{Id: id}); err != nil {
		t.Fatal(err)
	}
	d := waitFor(t, tc, id, want.String(), isFinalOr(want))
	if d.State != want {
		t.Fatalf("deployment %s prepared to %s, want %s: %s", id, d.State, want, d.Error)
	}
	return d
}

// continueTo runs stage 2 of id and waits for a final state, which must be want.
func continueTo(t *testing.T, tc *testController, id string, want cutoverv1.DeploymentState) *cutoverv1.Deployment {
	t.Helper()
	if _, err := tc.admin.ContinueDeployment(ctx(t), &cutoverv1.ContinueDeploymentRequest{Id: id}); err != nil {
		t.Fatal(err)
	}
	d := waitFor(t, tc, id, "a final state", isFinalOr(cutoverv1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED))
	if d.State != want {
		t.Fatalf("deployment %s ended %s, want %s: %s", id, d.State, want, d.Error)
	}
	return d
}

// continueBack continues deployment id and waits for the stage 2 to fail
// and leave it PREPARED again (failed before anything changed); it returns
// the deployment, whose last history entry is the failure.
func continueBack(t *testing.T, tc *testController, id string) *cutoverv1.Deployment {
	t.Helper()
	before, err := tc.admin.GetDeployment(ctx(t), &cutoverv1.GetDeploymentRequest{Id: id})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tc.admin.ContinueDeployment(ctx(t), &cutoverv1.ContinueDeploymentRequest{Id: id}); err != nil {
		t.Fatal(err)
	}
	d := waitFor(t, tc, id, "PREPARED again, or a final state", func(d *cutoverv1.Deployment) bool {
		return isFinalOr(cutoverv1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED)(d) ||
			(d.State == cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED && len(d.History) > len(before.History)+1)
	})
	if d.State != cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED || d.Error != "" || d.ActivateTime != nil ||
		!d.PreparedTime.AsTime().Equal(before.PreparedTime.AsTime()) || !d.ExpireTime.AsTime().Equal(before.ExpireTime.AsTime()) {
		t.Fatalf("deployment %s after a stage 2 that failed before anything changed: %s (error %q, activate_time %v), want PREPARED as before: %s",
			id, d.State, d.Error, d.ActivateTime, lastEvent(d))
	}
	mustMention(t, "the last event", lastEvent(d), "PREPARED again", "continue again")
	return d
}

// isFinalOr holds for want and for every final state.
func isFinalOr(want cutoverv1.DeploymentState) func(*cutoverv1.Deployment) bool {
	return func(d *cutoverv1.Deployment) bool {
		return d.State == want || d.State.Final()
	}
}

func mustMention(t *testing.T, what, msg string, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(msg, p) {
			t.Errorf("%s lacks %q: %s", what, p, msg)
		}
	}
}

func mustFiles(t *testing.T, name, sql string) []migrate.File {
	t.Helper()
	f, err := migrate.ParseFile(name, []byte(sql))
	if err != nil {
		t.Fatal(err)
	}
	return []migrate.File{f}
}

// preApply applies the migration name of application hello to the
// database, as an earlier deployment would have.
func preApply(t *testing.T, driver, dsn, name, sql string) {
	t.Helper()
	db := migrate.DB{Driver: driver, DSN: dsn}
	p, err := migrate.Generate(ctx(t), db, "earlier", []migrate.AppFiles{{Application: "hello", Files: mustFiles(t, name, sql)}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := migrate.Execute(ctx(t), db, p); err != nil {
		t.Fatal(err)
	}
}
