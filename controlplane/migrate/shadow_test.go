package migrate

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/cutover-dev/cutover/pkg/errkind"
)

const usersV1 = `CREATE TABLE users (id integer PRIMARY KEY, email text);
INSERT INTO users (id, email) VALUES (1, 'a@example.com'), (2, 'a@example.com');
`

// shadowFor returns the Shadow options for the test: a scratch dir, and
// the files of every application for the PostgreSQL replay.
func shadowFor(t *testing.T, apps ...AppFiles) Shadow {
	files := map[string][]File{}
	for _, a := range apps {
		files[a.Application] = a.Files
	}
	return Shadow{Dir: t.TempDir(), Files: files, created: func(name string) { createdShadows = append(createdShadows, name) }}
}

// createdShadows are the scratch databases the tests' Checks created.
var createdShadows []string

// TestCheckFindsWhatWouldFail: a syntax error, a missing column and a table
// created again each fail Check with the file, the statement and its line;
// the environment's database is unchanged (schema and rows) and no shadow
// is left behind.
func TestCheckFindsWhatWouldFail(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		cases := []struct {
			name, sql string
			line      int
			want      []string
		}{
			{"syntax error", "-- a typo\n\nALTR TABLE users ADD COLUMN age integer;\n", 3, []string{"ALTR TABLE users"}},
			{"missing column", "CREATE TABLE orders (id integer PRIMARY KEY);\nCREATE INDEX users_nick ON users (nickname);\n", 2, []string{"nickname"}},
			{"table created again", "\nCREATE TABLE users (id integer);\n", 2, []string{"users"}},
		}
		for _, tc := range cases {
			t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
				db := be.fresh(t)
				v1 := mkFiles(t, "0001_users.up.sql", usersV1)
				apply(t, db, "dep-1", AppFiles{Application: "hello", Files: v1})
				before := snapshot(t, db)
				files := append(v1, mkFiles(t, "0002_change.up.sql", tc.sql)...)
				app := AppFiles{Application: "hello", Files: files}
				plan, err := Generate(ctxT(t), db, "dep-2", []AppFiles{app})
				if err != nil {
					t.Fatal(err)
				}
				sh := shadowFor(t, app)
				err = Check(ctxT(t), db, plan, sh)
				var se *StatementError
				if !errors.As(err, &se) {
					t.Fatalf("Check: %v, want a *StatementError", err)
				}
				if se.File != "0002_change.up.sql" || se.Line != tc.line {
					t.Errorf("file %s line %d, want 0002_change.up.sql line %d: %v", se.File, se.Line, tc.line, err)
				}
				if !errors.Is(err, errkind.FailedPrecondition) {
					t.Errorf("kind: %v", err)
				}
				mentions(t, err, append(tc.want, "0002_change.up.sql", "shadow database", "was not touched")...)
				unchanged(t, db, before, "Check touched the environment's database")
				if left, _ := os.ReadDir(sh.Dir); len(left) != 0 {
					t.Errorf("shadow left behind: %v", left)
				}
				if be.driver == DriverPostgres {
					noShadowDatabases(t, db)
				}
			})
		}
	})
}

// noShadowDatabases fails when a scratch database of Check is left on db's
// server.
func noShadowDatabases(t *testing.T, db DB) {
	t.Helper()
	if len(createdShadows) == 0 {
		t.Error("no scratch database was created")
	}
	for _, name := range createdShadows {
		if left := column(t, connect(t, db), `SELECT datname FROM pg_database WHERE datname = $1`, name); len(left) != 0 {
			t.Errorf("scratch database left: %v", left)
		}
	}
}

// TestCheckTimesGroups: a good plan runs on the shadow group by group;
// the times are kept in the plan, which Execute then runs unchanged.
func TestCheckTimesGroups(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		db := be.fresh(t)
		v1 := mkFiles(t, "0001_users.up.sql", usersV1)
		apply(t, db, "dep-1", AppFiles{Application: "hello", Files: v1})
		before := snapshot(t, db)
		noTx := "-- cutover:no-transaction\nVACUUM;\n"
		if be.driver == DriverPostgres {
			noTx = "-- cutover:no-transaction\nCREATE INDEX CONCURRENTLY users_email ON users (email);\n"
		}
		files := append(v1, mkFiles(t,
			"0002_orders.up.sql", "CREATE TABLE orders (id integer PRIMARY KEY, user_id integer REFERENCES users (id));\n",
			"0003_idx.up.sql", noTx,
			"0004_age.up.sql", "ALTER TABLE users ADD COLUMN age integer;\nUPDATE users SET age = 0;\n")...)
		app := AppFiles{Application: "hello", Files: files}
		plan, err := Generate(ctxT(t), db, "dep-2", []AppFiles{app})
		if err != nil {
			t.Fatal(err)
		}
		if err := Check(ctxT(t), db, plan, shadowFor(t, app)); err != nil {
			t.Fatalf("Check: %v", err)
		}
		unchanged(t, db, before, "Check touched the environment's database")
		if len(plan.Groups) != 3 {
			t.Fatalf("groups: %d", len(plan.Groups))
		}
		for i, g := range plan.Groups {
			if g.ShadowDuration <= 0 {
				t.Errorf("group %d has no shadow time", i+1)
			}
		}
		if plan.Shadow == nil || plan.Shadow.Database == "" || plan.Shadow.Duration <= 0 {
			t.Errorf("plan.Shadow = %+v", plan.Shadow)
		}
		t.Logf("shadow: %s; setup %s, groups %s", plan.Shadow.Database, plan.Shadow.Setup, plan.Shadow.Duration)
		if len(plan.Unproven) != 1 || plan.Unproven[0].Kind != "UPDATE" || plan.Unproven[0].Line != 2 {
			t.Errorf("unproven: %+v", plan.Unproven)
		}
		if _, err := Execute(ctxT(t), db, plan); err != nil {
			t.Fatalf("Execute after Check: %v", err)
		}
	})
}

// TestCheckCannotProveData: a unique index over duplicate values passes
// on the schema-only shadow, and the plan marks it as unproven.
func TestCheckCannotProveData(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		db := be.fresh(t)
		v1 := mkFiles(t, "0001_users.up.sql", usersV1)
		apply(t, db, "dep-1", AppFiles{Application: "hello", Files: v1})
		files := append(v1, mkFiles(t, "0002_unique.up.sql", "CREATE UNIQUE INDEX users_email ON users (email);\n")...)
		app := AppFiles{Application: "hello", Files: files}
		plan, err := Generate(ctxT(t), db, "dep-2", []AppFiles{app})
		if err != nil {
			t.Fatal(err)
		}
		if err := Check(ctxT(t), db, plan, shadowFor(t, app)); err != nil {
			t.Fatalf("Check: %v", err)
		}
		if len(plan.Unproven) != 1 || plan.Unproven[0].Kind != "CREATE UNIQUE INDEX" {
			t.Errorf("unproven: %+v", plan.Unproven)
		}
		if _, err := Execute(ctxT(t), db, plan); err == nil {
			t.Error("Execute: the unique index over duplicates succeeded")
		}
	})
}

// TestCheckEmptySQLite: a SQLite database that does not exist yet gives an
// empty shadow, and stays absent.
func TestCheckEmptySQLite(t *testing.T) {
	db := freshSQLite(t)
	app := AppFiles{Application: "hello", Files: mkFiles(t, "0001_users.up.sql", usersV1, "0002_again.up.sql", "CREATE TABLE users (id integer);")}
	plan, err := Generate(ctxT(t), db, "dep-1", []AppFiles{app})
	if err != nil {
		t.Fatal(err)
	}
	err = Check(ctxT(t), db, plan, shadowFor(t, app))
	mentions(t, err, "0002_again.up.sql", "statement 1 (line 1)", "already exists")
	if _, serr := os.Stat(db.DSN); !errors.Is(serr, os.ErrNotExist) {
		t.Errorf("the database file was created: %v", serr)
	}
}

// TestCheckPostgresReplaysApplied: on PostgreSQL the shadow replays the
// applied migrations; one whose file is not given is not replayed, and
// the error of a statement that needs what it created says so.
func TestCheckPostgresReplaysApplied(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		if be.driver != DriverPostgres {
			t.Skip("SQLite copies the schema")
		}
		db := be.fresh(t)
		other := AppFiles{Application: "billing", Files: mkFiles(t, "0001_invoices.up.sql", "CREATE TABLE invoices (id integer);")}
		apply(t, db, "dep-1", other)
		app := AppFiles{Application: "hello", Files: mkFiles(t, "0001_users.up.sql", "CREATE TABLE users (id integer);\nINSERT INTO users SELECT id FROM invoices;")}
		plan, err := Generate(ctxT(t), db, "dep-2", []AppFiles{app})
		if err != nil {
			t.Fatal(err)
		}
		err = Check(ctxT(t), db, plan, shadowFor(t, app))
		if !errors.Is(err, errkind.FailedPrecondition) {
			t.Fatalf("Check: %v", err)
		}
		mentions(t, err, "invoices", `not replayed`, `application "billing" migration 1 (0001_invoices.up.sql`)
		if err := Check(ctxT(t), db, plan, shadowFor(t, app, other)); err != nil {
			t.Fatalf("Check with billing's files: %v", err)
		}
		if !strings.Contains(plan.Shadow.Database, "1 migration(s)") {
			t.Errorf("shadow: %s", plan.Shadow.Database)
		}
		noShadowDatabases(t, db)
	})
}

func TestDataDependent(t *testing.T) {
	for _, tc := range []struct{ sql, want string }{
		{"CREATE TABLE t (id int)", ""},
		{"CREATE INDEX i ON t (x)", ""},
		{"update t set x = 1", "UPDATE"},
		{"DELETE FROM t", "DELETE"},
		{"INSERT INTO t VALUES (1)", ""},
		{"INSERT INTO t SELECT * FROM u", "INSERT … SELECT"},
		{"INSERT INTO t VALUES ('select')", ""},
		{"WITH x AS (SELECT 1) UPDATE t SET y = 1", "UPDATE"},
		{"CREATE UNIQUE INDEX i ON t (x)", "CREATE UNIQUE INDEX"},
		{"ALTER TABLE t ALTER COLUMN x SET NOT NULL", "ALTER TABLE … SET NOT NULL"},
		{"ALTER TABLE t ADD CONSTRAINT c CHECK (x > 0)", "ALTER TABLE … ADD CONSTRAINT"},
		{"ALTER TABLE t ADD CONSTRAINT c CHECK (x > 0) NOT VALID", ""},
		{"ALTER TABLE t ADD COLUMN y int", ""},
		{"ALTER TABLE t ADD COLUMN y int NOT NULL", "ALTER TABLE … ADD … NOT NULL"},
		{"ALTER TABLE t ADD COLUMN y int NOT NULL DEFAULT 0", ""},
		{"ALTER TABLE t ALTER COLUMN x TYPE bigint", "ALTER TABLE … ALTER COLUMN … TYPE"},
		{"-- UPDATE in a comment\nCREATE TABLE u (id int)", ""},
		{"/* a /* nested */ UPDATE in a comment */ CREATE TABLE u (id int)", ""},
		{"INSERT INTO t VALUES (E'it\\'s a select')", ""},
	} {
		stmts, err := splitStatements(DriverPostgres, tc.sql)
		if err != nil || len(stmts) != 1 {
			t.Fatalf("%q splits to %v (%v)", tc.sql, stmts, err)
		}
		if got, _ := dataDependent(DriverPostgres, stmts[0].words); got != tc.want {
			t.Errorf("%q: %q, want %q", tc.sql, got, tc.want)
		}
	}
}
