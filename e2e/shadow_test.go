package e2e

import (
	"context"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cutover-dev/cutover/controlplane/migrate/migratetest"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// TestSQLShadowFailsPrepare (issue 13): over the real binaries, on SQLite
// and on PostgreSQL, a syntax error, a reference to a missing column and a
// table created again each fail prepare, found on a shadow database: the
// deployment is FAILED before the window with the file, the statement and
// its line, and the environment's database is unchanged, schema and rows.
// A good script then prepares, and its plan shows the shadow's times and
// marks the statements whose outcome depends on the rows.
func TestSQLShadowFailsPrepare(t *testing.T) {
	t.Parallel()
	for _, be := range []struct {
		driver string
		fresh  func(testing.TB) string
	}{{migratetest.SQLite, migratetest.SQLiteDSN}, {migratetest.Postgres, migratetest.FreshPostgres}} {
		t.Run(be.driver, func(t *testing.T) {
			t.Parallel()
			testSQLShadow(t, sqlDatabase{be.driver, be.fresh(t)})
		})
	}
}

func testSQLShadow(t *testing.T, db sqlDatabase) {
	c := newCluster(t)
	src := filepath.Join(c.dir, "src")
	copyApp(t, src, "v1")
	c.createEnvWithDB("shadow", true, db.proto())
	c.startAgents("shadow", "fe-1")
	app := c.registerApp(src)
	d1 := c.createDeployment("shadow", app, "v1")
	c.prepareAndWait(d1)
	c.continueAndWait(d1, deployed)
	insertDuplicateVisits(t, db) // rows, which the shadow has none of

	for i, tc := range []struct {
		name, sql string
		want      []string
	}{
		{"a syntax error", "-- typo\nALTR TABLE visits ADD COLUMN agent TEXT;\n", []string{"statement 1 (line 2)", "ALTR TABLE visits"}},
		{"a missing column", "CREATE TABLE pages (id INTEGER PRIMARY KEY);\n\nCREATE INDEX visits_agent ON visits (agent);\n", []string{"statement 2 (line 3)", "agent"}},
		{"a table created again", "CREATE TABLE visits (id INTEGER PRIMARY KEY);\n", []string{"statement 1 (line 1)", "visits", "already exists"}},
	} {
		t.Logf("%s fails prepare", tc.name)
		version := []string{"v2", "v3", "v4"}[i]
		writeVersion(t, src, version)
		addMigration(t, src, "0002_change.up.sql", tc.sql)
		before := db.snapshot(t)
		id := c.createDeployment("shadow", app, version)
		if _, err := c.Admin.PrepareDeployment(context.Background(), &cutoverv1.PrepareDeploymentRequest{Id: id}); err != nil {
			t.Fatal(err)
		}
		d := c.waitDeployment(id, failed)
		mentionsAll(t, tc.name, d.GetError(), append(tc.want, "shadow database", "0002_change.up.sql", "was not changed", "nothing was sent to the agents")...)
		if d.GetActivateTime() != nil {
			t.Errorf("%s: the window was entered (activate_time %v)", tc.name, d.GetActivateTime())
		}
		for _, a := range d.GetAgents() {
			if a.GetTransferredBytes() != 0 {
				t.Errorf("%s: agent %s received %d bytes", tc.name, a.GetName(), a.GetTransferredBytes())
			}
		}
		if after := db.snapshot(t); after != before {
			t.Errorf("%s: prepare changed the environment's database:\nbefore:\n%s\nafter:\n%s", tc.name, before, after)
		}
	}

	t.Log("a good script prepares; its plan shows the shadow's times and what it could not prove")
	writeVersion(t, src, "v5")
	addMigration(t, src, "0002_change.up.sql", "ALTER TABLE visits ADD COLUMN agent TEXT;\nUPDATE visits SET agent = 'unknown';\n")
	addMigration(t, src, "0003_unique.up.sql", "CREATE UNIQUE INDEX visits_id_path ON visits (id, path);\n")
	id := c.createDeployment("shadow", app, "v5")
	c.prepareAndWait(id)
	code, out, errOut := c.ctl("deploy", "plan", id)
	if code != 0 {
		t.Fatalf("deploy plan: exit %d\n%s", code, errOut)
	}
	t.Logf("deploy plan:\n%s", out)
	mentionsAll(t, "deploy plan", out, "checked at prepare on a shadow database: "+db.driver, "group 1 (transaction: 0002_change.up.sql, 0003_unique.up.sql)",
		"NOT PROVEN on a schema-only shadow: 2 statement(s)", "0002_change.up.sql statement 2 (line 2) UPDATE", "0003_unique.up.sql statement 1 (line 1) CREATE UNIQUE INDEX")
	dep := c.continueAndWait(id, deployed)
	plan, err := c.Admin.GetDeploymentPlan(context.Background(), &cutoverv1.GetDeploymentPlanRequest{Id: id})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: SQL on the shadow at prepare %s; in stage 2 %s", db.driver, plan.GetShadowDuration().AsDuration(), dep.GetSqlDuration().AsDuration())
}

// TestEnvDatabaseCheck (issue 13): env create checks the database: a wrong
// PostgreSQL password is refused with the user and database names shown
// and the password hidden; a SQLite file in a missing directory is refused;
// --no-check accepts both.
func TestEnvDatabaseCheck(t *testing.T) {
	t.Parallel()
	c := newCluster(t)

	t.Run("sqlite", func(t *testing.T) {
		missing := filepath.Join(c.dir, "no", "such", "dir", "app.db")
		code, out, errOut := c.ctl("env", "create", "lite", "--db-driver", "sqlite", "--db-dsn", missing)
		if code == 0 {
			t.Fatalf("env create with a missing directory succeeded:\n%s", out)
		}
		mentionsAll(t, "env create", errOut, filepath.Dir(missing), "--no-check")
		if code, _, errOut := c.ctl("env", "create", "lite", "--db-driver", "sqlite", "--db-dsn", missing, "--no-check"); code != 0 {
			t.Errorf("env create --no-check: exit %d\n%s", code, errOut)
		}
		ok := filepath.Join(c.dir, "ok.db")
		if code, _, errOut := c.ctl("env", "create", "lite2", "--db-driver", "sqlite", "--db-dsn", ok); code != 0 {
			t.Errorf("env create with a writable directory: exit %d\n%s", code, errOut)
		}
	})

	t.Run("postgres", func(t *testing.T) {
		dsn := migratetest.FreshPostgres(t)
		u, err := url.Parse(dsn)
		if err != nil || u.User == nil {
			t.Skipf("%s is not a URL with a user", migratetest.PostgresEnv)
		}
		user, dbname := u.User.Username(), strings.TrimPrefix(u.Path, "/")
		u.User = url.UserPassword(user, "wr0ng-pw")
		code, out, errOut := c.ctl("env", "create", "pg", "--db-driver", "postgres", "--db-dsn", u.String())
		if code == 0 {
			t.Fatalf("env create with a wrong password succeeded:\n%s", out)
		}
		t.Logf("env create with a wrong password: %s", strings.TrimSpace(errOut))
		mentionsAll(t, "env create", errOut, "user="+user, "database="+dbname, "password authentication failed", "xxxxx")
		if strings.Contains(errOut, "wr0ng-pw") {
			t.Errorf("the password shows: %s", errOut)
		}
		code, out, errOut = c.ctl("env", "create", "pg", "--db-driver", "postgres", "--db-dsn", u.String(), "--no-check")
		if code != 0 {
			t.Fatalf("env create --no-check: exit %d\n%s", code, errOut)
		}
		if strings.Contains(out, "wr0ng-pw") || !strings.Contains(out, user+":xxxxx@") {
			t.Errorf("env create shows:\n%s", out)
		}
		// The right password passes the check.
		if code, _, errOut := c.ctl("env", "update", "pg", "--db-dsn", dsn); code != 0 {
			t.Errorf("env update with the right password: exit %d\n%s", code, errOut)
		}
	})
}
