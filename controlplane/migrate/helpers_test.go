package migrate

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/controlplane/migrate/migratetest"
)

// backend is a database kind the engine tests run against.
type backend struct {
	driver string
	// fresh returns a new, empty database that is removed after the test.
	fresh func(t *testing.T) DB
}

// eachBackend runs f once on SQLite and once on PostgreSQL. PostgreSQL is
// skipped when migratetest.PostgresEnv is unset, unless CI=true, where that
// fails.
func eachBackend(t *testing.T, f func(t *testing.T, be backend)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) {
		f(t, backend{driver: DriverSQLite, fresh: freshSQLite})
	})
	t.Run("postgres", func(t *testing.T) {
		migratetest.RequirePostgres(t)
		f(t, backend{driver: DriverPostgres, fresh: freshPostgres})
	})
}

func freshSQLite(t *testing.T) DB {
	return DB{Driver: DriverSQLite, DSN: migratetest.SQLiteDSN(t)}
}

func freshPostgres(t *testing.T) DB {
	t.Helper()
	return DB{Driver: DriverPostgres, DSN: migratetest.FreshPostgres(t)}
}

// connect opens db for a test's own queries.
func connect(t *testing.T, db DB) *sql.DB {
	t.Helper()
	return migratetest.Connect(t, db.Driver, db.DSN)
}

// snapshot describes db's schema and every row of every table, sorted, so
// two snapshots are equal exactly when nothing changed.
func snapshot(t *testing.T, db DB) string {
	t.Helper()
	return migratetest.Snapshot(t, db.Driver, db.DSN)
}

// column returns the first column of q's rows as strings.
func column(t *testing.T, pool *sql.DB, q string, args ...any) []string {
	t.Helper()
	return migratetest.Column(t, pool, q, args...)
}

// mkFiles makes Files from name, content pairs.
func mkFiles(t *testing.T, nameContent ...string) []File {
	t.Helper()
	var out []File
	for i := 0; i < len(nameContent); i += 2 {
		f, err := ParseFile(nameContent[i], []byte(nameContent[i+1]))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, f)
	}
	return out
}

// ctxT is a context that ends with the test or after a minute.
func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// apply generates and executes a plan for apps, failing the test on error.
func apply(t *testing.T, db DB, deployment string, apps ...AppFiles) *Plan {
	t.Helper()
	p, err := Generate(ctxT(t), db, deployment, apps)
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	if _, err := Execute(ctxT(t), db, p); err != nil {
		t.Fatalf("Execute: %v", err)
	}
	return p
}

// mentions fails the test unless err's message holds every part.
func mentions(t *testing.T, err error, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("error lacks %q: %v", p, err)
		}
	}
}

// unchanged fails the test when db's snapshot differs from before.
func unchanged(t *testing.T, db DB, before, what string) {
	t.Helper()
	if after := snapshot(t, db); after != before {
		t.Errorf("%s:\nbefore:\n%s\nafter:\n%s", what, before, after)
	}
}

// generate plans files of application "hello" for deployment "dep-1",
// failing the test on error.
func generate(t *testing.T, db DB, files []File) *Plan {
	t.Helper()
	p, err := Generate(ctxT(t), db, "dep-1", []AppFiles{{Application: "hello", Files: files}})
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	return p
}
