package migrate

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cutover-dev/cutover/pkg/errkind"
)

// CheckAccess checks that the controller can reach db with the rights that
// prepare and continue need, without changing anything: PostgreSQL: it
// connects (CONNECT), may CREATE in the current schema (the bookkeeping
// table, the migrations' DDL), may read and write the bookkeeping table
// when it exists, and may CREATE DATABASE on the server of shadowDSN (or
// of db.DSN when shadowDSN is "") for prepare's shadow database; SQLite:
// the file's directory is writable (the database, its journal and the
// lock file live there), and an existing file is a database that can be
// read and written.
//
// Errors: errkind.InvalidArgument for a bad DB; errkind.Unavailable when
// the database cannot be reached (the message keeps the user and database
// names, not the password); errkind.FailedPrecondition listing every right
// that is missing and how to grant it.
func CheckAccess(ctx context.Context, db DB, shadowDSN string) error {
	if err := db.Validate(); err != nil {
		return err
	}
	if db.Driver == DriverSQLite {
		return checkSQLiteAccess(ctx, db)
	}
	if shadowDSN != "" {
		if err := (DB{Driver: DriverPostgres, DSN: shadowDSN}).Validate(); err != nil {
			return fmt.Errorf("shadow_dsn: %w", err)
		}
	}
	return checkPostgresAccess(ctx, db, shadowDSN)
}

func checkSQLiteAccess(ctx context.Context, db DB) error {
	path, _, _ := sqliteParts(db.DSN) // Validate parsed it
	dir := filepath.Dir(path)
	var missing []string
	st, err := os.Stat(dir)
	switch {
	case err != nil:
		return fmt.Errorf("database %s: its directory %s: %v; nothing was saved: create it, give another path, or pass --no-check (skip_database_check): %w", db, dir, err, errkind.FailedPrecondition)
	case !st.IsDir():
		return fmt.Errorf("database %s: %s is not a directory; nothing was saved: give another path, or pass --no-check (skip_database_check): %w", db, dir, errkind.FailedPrecondition)
	case syscall.Access(dir, 2 /* W_OK */) != nil:
		missing = append(missing, fmt.Sprintf("write access to the directory %s (the database, its journal and %s live there)", dir, "<file>"+lockFileSuffix))
	}
	ok, err := sqliteExists(path)
	if err != nil {
		return err
	}
	if ok {
		if syscall.Access(path, 2|4 /* W_OK|R_OK */) != nil {
			missing = append(missing, fmt.Sprintf("read and write access to %s", path))
		} else {
			uri, _, _ := sqliteReadOnlyDSN(db.DSN)
			pool, conn, err := open(ctx, db, uri)
			if err != nil {
				return err
			}
			defer pool.Close()
			defer conn.Close()
			var n int
			if err := conn.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_master").Scan(&n); err != nil {
				return fmt.Errorf("database %s: %s: %w", db, redactIn(err.Error(), db.DSN), errkind.FailedPrecondition)
			}
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("database %s: the controller (uid %d) lacks %s; nothing was saved: grant it, or pass --no-check: %w",
			db, os.Getuid(), strings.Join(missing, "; "), errkind.FailedPrecondition)
	}
	return nil
}

func checkPostgresAccess(ctx context.Context, db DB, shadowDSN string) error {
	pool, conn, err := open(ctx, db, db.DSN)
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42501" {
			return fmt.Errorf("%s; the role lacks CONNECT on the database (GRANT CONNECT ON DATABASE …): %w", errkind.Message(err), errkind.FailedPrecondition)
		}
		return err
	}
	defer pool.Close()
	defer conn.Close()
	var (
		user, database   string
		schema           sql.NullString
		create, createdb bool
		tableOK          sql.NullBool
	)
	err = conn.QueryRowContext(ctx, `SELECT current_user, current_database(), current_schema(),
		COALESCE(has_schema_privilege(current_schema(), 'CREATE'), false),
		(SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user),
		CASE WHEN to_regclass('`+table+`') IS NULL THEN NULL
		     ELSE has_table_privilege('`+table+`', 'SELECT, INSERT') END`).
		Scan(&user, &database, &schema, &create, &createdb, &tableOK)
	if err != nil {
		kind, note := classify(ctx, db, err)
		return fmt.Errorf("database %s: reading the role's rights: %s%s: %w", db, redactIn(err.Error(), db.DSN), note, kind)
	}
	var missing []string
	switch {
	case !schema.Valid:
		missing = append(missing, "a schema to work in (search_path names none that exists)")
	case !create:
		missing = append(missing, fmt.Sprintf("CREATE on schema %s, for the bookkeeping table and the migrations (GRANT CREATE ON SCHEMA %s TO %s)", schema.String, schema.String, user))
	}
	if tableOK.Valid && !tableOK.Bool {
		missing = append(missing, fmt.Sprintf("SELECT and INSERT on %s (GRANT SELECT, INSERT ON %s TO %s)", table, table, user))
	}
	if shadowDSN == "" && !createdb {
		missing = append(missing, fmt.Sprintf("CREATEDB, for the scratch database prepare checks the SQL script on (ALTER ROLE %s CREATEDB; or set database.shadow_dsn to a role that has it)", user))
	}
	if shadowDSN != "" {
		if err := checkShadowServer(ctx, DB{Driver: DriverPostgres, DSN: shadowDSN}); err != nil {
			missing = append(missing, err.Error())
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("database %s: role %s on database %s lacks: %s; nothing was saved: grant what is missing, or pass --no-check (skip_database_check): %w",
			db, user, database, strings.Join(missing, "; "), errkind.FailedPrecondition)
	}
	return nil
}

// checkShadowServer checks that the role of shadow may create databases.
func checkShadowServer(ctx context.Context, shadow DB) error {
	pool, conn, err := open(ctx, shadow, shadow.DSN)
	if err != nil {
		return fmt.Errorf("shadow_dsn: %s", errkind.Message(err))
	}
	defer pool.Close()
	defer conn.Close()
	var user string
	var createdb bool
	if err := conn.QueryRowContext(ctx, `SELECT current_user, (SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user)`).Scan(&user, &createdb); err != nil {
		return fmt.Errorf("shadow_dsn %s: %s", shadow, redactIn(err.Error(), shadow.DSN))
	}
	if !createdb {
		return fmt.Errorf("CREATEDB for role %s of shadow_dsn %s (ALTER ROLE %s CREATEDB)", user, shadow, user)
	}
	return nil
}
