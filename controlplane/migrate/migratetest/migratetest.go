// Package migratetest gives tests real databases to migrate: a fresh SQLite
// file, a fresh PostgreSQL database on the server named by
// CUTOVER_TEST_POSTGRES_DSN (removed when the test ends), a connection for
// the test's own queries, and a snapshot of a database's schema and rows
// that is equal exactly when nothing changed. It is used by the tests of
// package migrate, of the controller and of e2e.
package migratetest

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
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// PostgresEnv names the env var holding an admin DSN of a PostgreSQL server
// whose role may CREATE DATABASE.
const PostgresEnv = "CUTOVER_TEST_POSTGRES_DSN"

// The drivers, as migrate.DB.Driver spells them.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
)

// RequirePostgres returns the admin DSN of PostgresEnv. When it is unset the
// test is skipped, unless CI=true, where that fails the test.
func RequirePostgres(t testing.TB) string {
	t.Helper()
	admin := os.Getenv(PostgresEnv)
	if admin == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set; CI must run the PostgreSQL tests", PostgresEnv)
		}
		t.Skipf("%s is not set", PostgresEnv)
	}
	return admin
}

// SQLiteDSN returns the path of a SQLite database file that does not exist
// yet, in a directory removed after the test.
func SQLiteDSN(t testing.TB) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "app.db")
}

// FreshPostgres creates an empty database on the server of PostgresEnv
// (see RequirePostgres for when that is unset), drops it when the test
// ends, and returns its DSN.
func FreshPostgres(t testing.TB) string {
	t.Helper()
	admin := RequirePostgres(t)
	cfg, err := pgx.ParseConfig(admin)
	if err != nil {
		t.Fatalf("%s: %v", PostgresEnv, err)
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
	return dsn
}

// Connect opens the database for a test's own queries; it is closed when
// the test ends.
func Connect(t testing.TB, driver, dsn string) *sql.DB {
	t.Helper()
	var pool *sql.DB
	if driver == Postgres {
		cfg, err := pgx.ParseConfig(dsn)
		if err != nil {
			t.Fatal(err)
		}
		pool = stdlib.OpenDB(*cfg)
	} else {
		var err error
		if pool, err = sql.Open("sqlite", dsn); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _ = pool.Close() })
	return pool
}

// Snapshot describes the database's schema and every row of every table,
// sorted, so two snapshots are equal exactly when nothing changed. A SQLite
// file that does not exist is "no database file".
func Snapshot(t testing.TB, driver, dsn string) string {
	t.Helper()
	if driver == SQLite {
		if _, err := os.Stat(dsn); err != nil {
			return "no database file"
		}
	}
	pool := Connect(t, driver, dsn)
	defer pool.Close()
	var b strings.Builder
	var tables []string
	if driver == SQLite {
		b.WriteString(QueryText(t, pool, `SELECT type, name, tbl_name, COALESCE(sql, '') FROM sqlite_master`))
		tables = Column(t, pool, `SELECT name FROM sqlite_master WHERE type = 'table'`)
	} else {
		b.WriteString(QueryText(t, pool, `SELECT table_name, column_name, data_type, is_nullable, COALESCE(column_default, '')
			FROM information_schema.columns WHERE table_schema = 'public'`))
		b.WriteString(QueryText(t, pool, `SELECT c.relname, c.relkind::text, COALESCE(pg_get_indexdef(c.oid), '')
			FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'`))
		tables = Column(t, pool, `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'`)
	}
	sort.Strings(tables)
	for _, tb := range tables {
		fmt.Fprintf(&b, "rows of %s:\n", tb)
		b.WriteString(QueryText(t, pool, `SELECT * FROM "`+tb+`"`))
	}
	return b.String()
}

// Tables returns the names of the tables of the database (schema public on
// PostgreSQL), sorted; none when a SQLite file does not exist.
func Tables(t testing.TB, driver, dsn string) []string {
	t.Helper()
	if driver == SQLite {
		if _, err := os.Stat(dsn); err != nil {
			return nil
		}
	}
	pool := Connect(t, driver, dsn)
	defer pool.Close()
	q := `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'`
	if driver == SQLite {
		q = `SELECT name FROM sqlite_master WHERE type = 'table'`
	}
	out := Column(t, pool, q)
	sort.Strings(out)
	return out
}

// QueryText returns the rows of q as sorted lines.
func QueryText(t testing.TB, pool *sql.DB, q string) string {
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

// Column returns the first column of q's rows as strings.
func Column(t testing.TB, pool *sql.DB, q string, args ...any) []string {
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
