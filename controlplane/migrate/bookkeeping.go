package migrate

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/cutover-dev/cutover/pkg/errkind"
)

// table is the bookkeeping table: one row per applied migration.
const table = "cutover_schema_migrations"

// createTableSQL creates the bookkeeping table if it is missing.
func createTableSQL(driver string) string {
	if driver == DriverPostgres {
		return `CREATE TABLE IF NOT EXISTS ` + table + ` (
    application   text        NOT NULL,
    version       bigint      NOT NULL,
    name          text        NOT NULL,
    checksum      text        NOT NULL,
    applied_at    timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP,
    deployment_id text        NOT NULL,
    PRIMARY KEY (application, version)
)`
	}
	return `CREATE TABLE IF NOT EXISTS ` + table + ` (
    application   TEXT    NOT NULL,
    version       INTEGER NOT NULL,
    name          TEXT    NOT NULL,
    checksum      TEXT    NOT NULL,
    applied_at    TEXT    NOT NULL DEFAULT CURRENT_TIMESTAMP,
    deployment_id TEXT    NOT NULL,
    PRIMARY KEY (application, version)
)`
}

// querier is what *sql.Conn and *sql.Tx have in common.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// readApplied reads the bookkeeping rows without writing anything: SQLite
// is opened read-only (a missing file means no rows), PostgreSQL is read in
// a READ ONLY transaction.
func readApplied(ctx context.Context, db DB) ([]Applied, error) {
	dsn := db.DSN
	if db.Driver == DriverSQLite {
		uri, path, err := sqliteReadOnlyDSN(db.DSN)
		if err != nil {
			return nil, fmt.Errorf("database %s: %v: %w", db, err, errkind.InvalidArgument)
		}
		ok, err := sqliteExists(path)
		if err != nil || !ok {
			return nil, err
		}
		dsn = uri
	}
	pool, conn, err := open(ctx, db, dsn)
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	defer conn.Close()
	if db.Driver == DriverSQLite {
		if _, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA busy_timeout = %d", sqliteBusy(db).Milliseconds())); err != nil {
			return nil, fmt.Errorf("database %s: setting busy_timeout: %s: %w", db, redactIn(err.Error(), db.DSN), errkind.Unavailable)
		}
	}
	tx, err := conn.BeginTx(ctx, &sql.TxOptions{ReadOnly: db.Driver == DriverPostgres})
	if err != nil {
		return nil, fmt.Errorf("database %s: starting a read-only transaction: %s: %w", db, redactIn(err.Error(), db.DSN), errkind.Unavailable)
	}
	defer tx.Rollback() //nolint:errcheck // read-only; nothing to keep
	rows, err := readRows(ctx, tx, db.Driver)
	if err != nil {
		kind, note := classify(ctx, db, err)
		return nil, fmt.Errorf("database %s: %s%s; nothing was changed: %w", db, redactIn(err.Error(), db.DSN), note, kind)
	}
	return rows, nil
}

// readRows returns the bookkeeping rows sorted by application and version;
// none when the table does not exist.
func readRows(ctx context.Context, q querier, driver string) ([]Applied, error) {
	exists := `SELECT to_regclass('` + table + `') IS NOT NULL`
	if driver == DriverSQLite {
		exists = `SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = '` + table + `'`
	}
	var ok bool
	if err := q.QueryRowContext(ctx, exists).Scan(&ok); err != nil {
		return nil, fmt.Errorf("checking for %s: %w", table, err)
	}
	if !ok {
		return nil, nil
	}
	rows, err := q.QueryContext(ctx, `SELECT application, version, name, checksum, deployment_id, CAST(applied_at AS TEXT) FROM `+table)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", table, err)
	}
	defer rows.Close()
	var out []Applied
	for rows.Next() {
		var a Applied
		if err := rows.Scan(&a.Application, &a.Version, &a.Name, &a.Checksum, &a.DeploymentID, &a.AppliedAt); err != nil {
			return nil, fmt.Errorf("reading %s: %w", table, err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", table, err)
	}
	sortApplied(out)
	return out, nil
}

// sortApplied sorts rows by application, then version.
func sortApplied(rows []Applied) {
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].Application != rows[j].Application {
			return rows[i].Application < rows[j].Application
		}
		return rows[i].Version < rows[j].Version
	})
}

// digest is the hex SHA-256 of rows (sorted), without applied_at.
func digest(rows []Applied) string {
	h := sha256.New()
	for _, r := range rows {
		for _, f := range []string{r.Application, strconv.FormatInt(r.Version, 10), r.Name, r.Checksum, r.DeploymentID} {
			h.Write([]byte(strconv.Quote(f)))
			h.Write([]byte{'\t'})
		}
		h.Write([]byte{'\n'})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// describeChange says how the rows now differ from the rows then.
func describeChange(then, now []Applied) string {
	key := func(a Applied) appVersion { return appVersion{a.Application, a.Version} }
	before := map[appVersion]Applied{}
	for _, a := range then {
		before[key(a)] = a
	}
	var changes []string
	for _, a := range now {
		b, ok := before[key(a)]
		delete(before, key(a))
		switch {
		case !ok:
			changes = append(changes, fmt.Sprintf("application %q migration %d (%s) was applied by deployment %s at %s", a.Application, a.Version, a.Name, a.DeploymentID, a.AppliedAt))
		case b != a && (b.Checksum != a.Checksum || b.Name != a.Name || b.DeploymentID != a.DeploymentID):
			changes = append(changes, fmt.Sprintf("application %q migration %d was rewritten (%s by deployment %s, was %s by deployment %s)", a.Application, a.Version, a.Name, a.DeploymentID, b.Name, b.DeploymentID))
		}
	}
	for _, b := range then {
		if _, gone := before[key(b)]; gone {
			changes = append(changes, fmt.Sprintf("application %q migration %d (%s) was removed from %s", b.Application, b.Version, b.Name, table))
		}
	}
	if len(changes) == 0 {
		return "the bookkeeping rows differ from the plan's basis"
	}
	const most = 5
	if len(changes) > most {
		changes = append(changes[:most], fmt.Sprintf("and %d more", len(changes)-most))
	}
	return strings.Join(changes, "; ")
}
