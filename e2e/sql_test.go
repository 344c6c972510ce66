package e2e

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/controlplane/migrate"
	"github.com/cutover-dev/cutover/controlplane/migrate/migratetest"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// sqlDatabase is the database an SQL test deploys against.
type sqlDatabase struct {
	driver, dsn string
}

func (db sqlDatabase) proto() *cutoverv1.Database {
	return &cutoverv1.Database{Driver: db.driver, Dsn: db.dsn}
}

func (db sqlDatabase) snapshot(t *testing.T) string {
	t.Helper()
	return migratetest.Snapshot(t, db.driver, db.dsn)
}

func (db sqlDatabase) tables(t *testing.T) []string {
	t.Helper()
	return migratetest.Tables(t, db.driver, db.dsn)
}

// addMigration writes db/migrations/NAME into the app source in dir.
func addMigration(t *testing.T, dir, name, sql string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "db", "migrations", name), []byte(sql), 0o644); err != nil {
		t.Fatal(err)
	}
}

// prepareAndWait prepares deployment id and waits until it is PREPARED.
func (c *cluster) prepareAndWait(id string) *cutoverv1.Deployment {
	c.t.Helper()
	if _, err := c.Admin.PrepareDeployment(context.Background(), &cutoverv1.PrepareDeploymentRequest{Id: id}); err != nil {
		c.t.Fatalf("PrepareDeployment(%s): %v", id, err)
	}
	return c.waitDeployment(id, prepared)
}

// continueAndWait continues deployment id and waits until it is want.
func (c *cluster) continueAndWait(id string, want cutoverv1.DeploymentState) *cutoverv1.Deployment {
	c.t.Helper()
	if _, err := c.Admin.ContinueDeployment(context.Background(), &cutoverv1.ContinueDeploymentRequest{Id: id}); err != nil {
		c.t.Fatalf("ContinueDeployment(%s): %v", id, err)
	}
	return c.waitDeployment(id, want)
}

// checkNoSwap fails the test if an agent of d reports a swap.
func checkNoSwap(t *testing.T, d *cutoverv1.Deployment) {
	t.Helper()
	for _, a := range d.GetAgents() {
		if a.GetSwapTime() != nil || a.GetState() != cutoverv1.AgentDeploymentState_AGENT_DEPLOYMENT_STATE_STAGED {
			t.Errorf("deployment %s: agent %s is %s (swap_time %v); want STAGED, never swapped", d.GetId(), a.GetName(), a.GetState(), a.GetSwapTime())
		}
	}
}

func mentionsAll(t *testing.T, what, msg string, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(msg, p) {
			t.Errorf("%s lacks %q: %s", what, p, msg)
		}
	}
}

// TestSQLMigrations walks issue 4's path over the real binaries, on SQLite
// and on PostgreSQL, with one controller and two agents each: prepare shows
// the script and leaves the database as it was; continue runs it before
// the swap; a failing migration in the middle of three changes nothing and
// swaps nothing; a database changed since prepare is refused ("prepare
// again"), and preparing again then deploys.
func TestSQLMigrations(t *testing.T) {
	t.Parallel()
	for _, be := range []struct {
		driver string
		fresh  func(testing.TB) string
	}{{migratetest.SQLite, migratetest.SQLiteDSN}, {migratetest.Postgres, migratetest.FreshPostgres}} {
		t.Run(be.driver, func(t *testing.T) {
			t.Parallel()
			db := sqlDatabase{be.driver, be.fresh(t)}
			testSQLMigrations(t, db)
		})
	}
}

func testSQLMigrations(t *testing.T, db sqlDatabase) {
	c := newCluster(t)
	src := filepath.Join(c.dir, "src")
	copyApp(t, src, "v1") // with examples/hello's 0001_create_visits
	c.createEnvWithDB("sql", true, db.proto())
	c.startAgents("sql", "fe-1", "fe-2")
	app := c.registerApp(src)

	t.Log("v1: prepare generates the script and writes nothing; continue runs it, then swaps")
	before := db.snapshot(t)
	d1 := c.createDeployment("sql", app, "v1")
	c.prepareAndWait(d1)
	if after := db.snapshot(t); after != before {
		t.Errorf("prepare changed the database:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	code, out, errOut := c.ctl("deploy", "plan", d1)
	if code != 0 {
		t.Fatalf("deploy plan: exit %d\n%s", code, errOut)
	}
	mentionsAll(t, "deploy plan", out, "-- hello 0001 0001_create_visits.up.sql", "CREATE TABLE visits (", "INSERT INTO cutover_schema_migrations", "COMMIT;")
	dep1 := c.continueAndWait(d1, deployed)
	v1 := releaseOf(t, dep1)
	if dep1.GetSqlDuration().AsDuration() <= 0 || dep1.GetSwapDuration() == nil {
		t.Errorf("deployed: sql_duration %v, swap_duration %v; want both measured", dep1.GetSqlDuration(), dep1.GetSwapDuration())
	}
	stage2 := dep1.GetFinishTime().AsTime().Sub(dep1.GetActivateTime().AsTime())
	t.Logf("%s: stage 2 took %s: SQL %s, swap %s (activation spread %s)", db.driver, stage2.Round(time.Microsecond),
		dep1.GetSqlDuration().AsDuration().Round(time.Microsecond), dep1.GetSwapDuration().AsDuration().Round(time.Microsecond),
		dep1.GetActivationSpread().AsDuration().Round(time.Microsecond))
	if got := db.tables(t); !slices.Contains(got, "visits") {
		t.Errorf("tables after continue = %v, want visits among them", got)
	}
	code, out, _ = c.ctl("deploy", "get", d1)
	if code != 0 || !strings.Contains(out, "SQL ") || !strings.Contains(out, "SWAP ") {
		t.Errorf("deploy get does not show the SQL and swap times:\n%s", out)
	}
	c.checkCurrent(app, v1)
	c.checkAnswers("v1")
	if t.Failed() {
		t.FailNow()
	}

	t.Log("v2: the middle one of three migrations fails on the schema: prepare finds it on a shadow, before the window")
	writeVersion(t, src, "v2")
	addMigration(t, src, "0002_create_pages.up.sql", "CREATE TABLE pages (id INTEGER PRIMARY KEY, path TEXT NOT NULL);\n")
	addMigration(t, src, "0003_backfill.up.sql", "INSERT INTO pages (id, path) VALUES (1, '/');\nINSERT INTO no_such_table (id) VALUES (1);\n")
	addMigration(t, src, "0004_add_title.up.sql", "ALTER TABLE pages ADD COLUMN title TEXT;\n")
	before = db.snapshot(t)
	d2 := c.createDeployment("sql", app, "v2")
	if _, err := c.Admin.PrepareDeployment(context.Background(), &cutoverv1.PrepareDeploymentRequest{Id: d2}); err != nil {
		t.Fatal(err)
	}
	dep2 := c.waitDeployment(d2, failed)
	mentionsAll(t, "the error", dep2.GetError(), "shadow database", "0003_backfill.up.sql", "statement 2 (line 2)", "no_such_table",
		"was not changed", "nothing was sent to the agents")
	if dep2.GetActivateTime() != nil {
		t.Errorf("the window was entered: activate_time %v", dep2.GetActivateTime())
	}
	if after := db.snapshot(t); after != before {
		t.Errorf("prepare changed the database:\nbefore:\n%s\nafter:\n%s", before, after)
	}

	t.Log("v2b: the middle one fails on the rows only: the plan marks it unproven; continue fails, the schema stays as it was, no agent swaps")
	writeVersion(t, src, "v2b")
	insertDuplicateVisits(t, db)
	addMigration(t, src, "0003_backfill.up.sql", "INSERT INTO pages (id, path) VALUES (1, '/');\nCREATE UNIQUE INDEX visits_path ON visits (path);\n")
	d2 = c.createDeployment("sql", app, "v2b")
	c.prepareAndWait(d2)
	code, out, errOut = c.ctl("deploy", "plan", d2)
	if code != 0 {
		t.Fatalf("deploy plan: exit %d\n%s", code, errOut)
	}
	mentionsAll(t, "deploy plan", out, "checked at prepare on a shadow database", "group 1 (transaction: 0002_create_pages.up.sql, 0003_backfill.up.sql, 0004_add_title.up.sql)",
		"NOT PROVEN", "0003_backfill.up.sql statement 2 (line 2) CREATE UNIQUE INDEX")
	before = db.snapshot(t)
	dep2, failure := c.continueBack(d2)
	mentionsAll(t, "the failure", failure, "0003_backfill.up.sql", "statement 2 (line 2)", "visits",
		"rolled back", "no agent was sent commit", "the database is as it was")
	if after := db.snapshot(t); after != before {
		t.Errorf("the failed script changed the database:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	checkNoSwap(t, dep2)
	c.checkCurrent(app, v1)
	c.checkAnswers("v1")
	if _, err := c.Admin.AbortDeployment(context.Background(), &cutoverv1.AbortDeploymentRequest{Id: d2}); err != nil { // it holds the environment
		t.Fatalf("abort %s: %v", d2, err)
	}
	if t.Failed() {
		t.FailNow()
	}

	t.Log("v3: the database changes between prepare and continue: refused, nothing swapped")
	writeVersion(t, src, "v3")
	addMigration(t, src, "0003_backfill.up.sql", "INSERT INTO pages (id, path) VALUES (1, '/');\n")
	d3 := c.createDeployment("sql", app, "v3")
	c.prepareAndWait(d3)
	other, err := migrate.ParseFile("0001_invoices.up.sql", []byte("CREATE TABLE invoices (id INTEGER PRIMARY KEY);\n"))
	if err != nil {
		t.Fatal(err)
	}
	mdb := migrate.DB{Driver: db.driver, DSN: db.dsn}
	p, err := migrate.Generate(context.Background(), mdb, "manual-1", []migrate.AppFiles{{Application: "billing", Files: []migrate.File{other}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := migrate.Execute(context.Background(), mdb, p); err != nil {
		t.Fatal(err)
	}
	before = db.snapshot(t)
	dep3 := c.continueAndWait(d3, failed)
	mentionsAll(t, "the error", dep3.GetError(), "the database changed since prepare", "billing", "manual-1", "prepare again")
	if after := db.snapshot(t); after != before {
		t.Errorf("a refused script changed the database:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	checkNoSwap(t, dep3)
	c.checkCurrent(app, v1)
	c.checkAnswers("v1")

	t.Log("v3, prepared again: deployed")
	d4 := c.createDeployment("sql", app, "v3")
	c.prepareAndWait(d4)
	c.continueAndWait(d4, deployed)
	if got := db.tables(t); !slices.Contains(got, "pages") || !slices.Contains(got, "invoices") {
		t.Errorf("tables after v3 = %v", got)
	}
	c.checkAnswers("v3")
}

// insertDuplicateVisits adds two visits of the same path to db.
func insertDuplicateVisits(t *testing.T, db sqlDatabase) {
	t.Helper()
	pool := migratetest.Connect(t, db.driver, db.dsn)
	if _, err := pool.Exec(`INSERT INTO visits (id, path, visited_at) VALUES (101, '/dup', 'x'), (102, '/dup', 'x')`); err != nil {
		t.Fatal(err)
	}
}

// TestSQLTwoControllersRace: two controllers, each with its own data dir
// and agent, continue deployments against one PostgreSQL database at the
// same moment. The migration lock lets one run; the other waits, then
// finds the database changed since its prepare and fails cleanly: its
// agent never swaps, and every migration is applied once, although both
// deployments have the same id.
func TestSQLTwoControllersRace(t *testing.T) {
	t.Parallel()
	db := sqlDatabase{migratetest.Postgres, migratetest.FreshPostgres(t)}
	slow := "SELECT pg_sleep(1);\nCREATE TABLE slow (id INTEGER);\n"
	clusters := []*cluster{newCluster(t), newCluster(t)}
	ids := make([]string, len(clusters))
	for i, c := range clusters {
		src := filepath.Join(c.dir, "src")
		copyApp(t, src, "v1")
		addMigration(t, src, "0002_slow.up.sql", slow)
		c.createEnvWithDB("race", true, db.proto())
		c.startAgents("race", "fe-1")
		app := c.registerApp(src)
		// Both controllers number their deployments alike: both are d-1,
		// and the bookkeeping rows alone cannot tell them apart.
		ids[i] = c.createDeployment("race", app, "v1")
		c.prepareAndWait(ids[i])
	}

	var wg sync.WaitGroup
	for i, c := range clusters {
		wg.Go(func() {
			if _, err := c.Admin.ContinueDeployment(context.Background(), &cutoverv1.ContinueDeploymentRequest{Id: ids[i]}); err != nil {
				t.Errorf("ContinueDeployment(%s) on controller %d: %v", ids[i], i, err)
			}
		})
	}
	wg.Wait()
	if ids[0] != ids[1] {
		t.Fatalf("the deployment ids differ (%s, %s); this test is about equal ones", ids[0], ids[1])
	}
	winner := -1
	for i, c := range clusters {
		d := c.waitSettled(ids[i], deployed)
		switch d.GetState() {
		case deployed:
			if winner >= 0 {
				t.Fatalf("both deployments are DEPLOYED")
			}
			winner = i
			t.Logf("controller %d's %s won: stage 2 took %s, SQL %s (1s of it pg_sleep), swap %s", i, ids[i],
				d.GetFinishTime().AsTime().Sub(d.GetActivateTime().AsTime()).Round(time.Millisecond),
				d.GetSqlDuration().AsDuration().Round(time.Millisecond), d.GetSwapDuration().AsDuration().Round(time.Millisecond))
		case failed:
			t.Logf("controller %d's %s failed cleanly after %s of SQL (most of it waiting for the lock): %s", i, ids[i],
				d.GetSqlDuration().AsDuration().Round(time.Millisecond), d.GetError())
			mentionsAll(t, "the loser's error", d.GetError(), "the database changed since prepare", "prepare again")
			checkNoSwap(t, d)
			if _, err := os.Lstat(filepath.Join(c.Agents[0].Root, "hello", "current")); !os.IsNotExist(err) {
				t.Errorf("controller %d's agent has a current release after a failed first deployment (%v)", i, err)
			}
		default:
			t.Errorf("controller %d's %s ended %s: %s", i, ids[i], d.GetState(), d.GetError())
		}
	}
	if winner < 0 {
		t.Fatal("neither deployment is DEPLOYED")
	}
	pool := migratetest.Connect(t, db.driver, db.dsn)
	rows := migratetest.Column(t, pool, "SELECT CAST(version AS TEXT) || ' ' || deployment_id FROM cutover_schema_migrations ORDER BY version")
	if want := []string{"1 " + ids[winner], "2 " + ids[winner]}; !slices.Equal(rows, want) {
		t.Errorf("bookkeeping rows = %q, want %q: each migration applied once, by the winner", rows, want)
	}
	clusters[winner].checkAnswers("v1")
}
