package migrate

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// postgresEnv names the env var holding an admin DSN of a PostgreSQL
// server whose role may CREATE DATABASE.
const postgresEnv = "CUTOVER_TEST_POSTGRES_DSN"

// backend is a database kind the engine tests run against.
type backend struct {
	driver string
	// fresh returns a new, empty database that is removed after the test.
	fresh func(t *testing.T) DB
}

// eachBackend runs f once on SQLite and once on PostgreSQL. PostgreSQL is
// skipped when postgresEnv is unset, unless CI=true, where that fails.
func eachBackend(t *testing.T, f func(t *testing.T, be backend)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) {
		f(t, backend{driver: DriverSQLite, fresh: freshSQLite})
	})
	t.Run("postgres", func(t *testing.T) {
		if os.Getenv(postgresEnv) == "" {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is not set; CI must run the PostgreSQL tests", postgresEnv)
			}
			t.Skipf("%s is not set", postgresEnv)
		}
		f(t, backend{driver: DriverPostgres, fresh: freshPostgres})
	})
}

func freshSQLite(t *testing.T) DB {
	return DB{Driver: DriverSQLite, DSN: filepath.Join(t.TempDir(), "app.db")}
}

func freshPostgres(t *testing.T) DB {
	t.Helper()
	admin := os.Getenv(postgresEnv)
	cfg, err := pgx.ParseConfig(admin)
	if err != nil {
		t.Fatalf("%s: %v", postgresEnv, err)
	}
	pool := stdlib.OpenDB(*cfg)
	defer pool.Close()
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "cutover_test_" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := pool.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("creating database %s: %v", name, err)
	}
	t.Cleanup(func() {
		pool := stdlib.OpenDB(*cfg)
		defer pool.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := pool.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("dropping database %s: %v", name, err)
		}
	})
	dsn := admin + " dbname=" + name
	if u, err := url.Parse(admin); err == nil && u.Scheme != "" {
		u.Path = "/" + name
		dsn = u.String()
	}
	return DB{Driver: DriverPostgres, DSN: dsn}
}

// connect opens db for a test's own queries.
func connect(t *testing.T, db DB) *sql.DB {
	t.Helper()
	var pool *sql.DB
	if db.Driver == DriverPostgres {
		cfg, err := pgx.ParseConfig(db.DSN)
		if err != nil {
			t.Fatal(err)
		}
		pool = stdlib.OpenDB(*cfg)
	} else {
		var err error
		if pool, err = sql.Open("sqlite", db.DSN); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _ = pool.Close() })
	return pool
}

// snapshot describes db's schema and every row of every table, sorted, so
// two snapshots are equal exactly when nothing changed.
func snapshot(t *testing.T, db DB) string {
	t.Helper()
	if db.Driver == DriverSQLite {
		if _, err := os.Stat(db.DSN); err != nil {
			return "no database file"
		}
	}
	pool := connect(t, db)
	var b strings.Builder
	var tables []string
	if db.Driver == DriverSQLite {
		b.WriteString(queryText(t, pool, `SELECT type, name, tbl_name, COALESCE(sql, '') FROM sqlite_master`))
		tables = column(t, pool, `SELECT name FROM sqlite_master WHERE type = 'table'`)
	} else {
		b.WriteString(queryText(t, pool, `SELECT table_name, column_name, data_type, is_nullable, COALESCE(column_default, '')
			FROM information_schema.columns WHERE table_schema = 'public'`))
		b.WriteString(queryText(t, pool, `SELECT c.relname, c.relkind::text, COALESCE(pg_get_indexdef(c.oid), '')
			FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'`))
		tables = column(t, pool, `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'`)
	}
	sort.Strings(tables)
	for _, tb := range tables {
		fmt.Fprintf(&b, "rows of %s:\n", tb)
		b.WriteString(queryText(t, pool, `SELECT * FROM "`+tb+`"`))
	}
	return b.String()
}

// queryText returns the rows of q as sorted lines.
func queryText(t *testing.T, pool *sql.DB, q string) string {
	t.Helper()
	rows, err := pool.Query(q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var lines []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, fmt.Sprintf("%v", vals))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n") + "\n"
}

// column returns the first column of q's rows as strings.
func column(t *testing.T, pool *sql.DB, q string, args ...any) []string {
	t.Helper()
	rows, err := pool.Query(q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
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
