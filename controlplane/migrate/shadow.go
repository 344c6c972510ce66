package migrate

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cutover-dev/cutover/pkg/errkind"
)

// ShadowPrefix starts the name of every scratch database Check creates on
// a PostgreSQL server (cutover_shadow_<12 hex digits>).
const ShadowPrefix = "cutover_shadow_"

// Shadow says where Check builds its shadow database.
type Shadow struct {
	// Dir is the directory where a SQLite shadow file is made (and removed
	// after); "" means os.TempDir().
	Dir string
	// DSN (PostgreSQL) names the server, and a role on it that may CREATE
	// DATABASE, where the scratch database is created and dropped after;
	// "" means the environment database's own DSN (its role then needs
	// CREATEDB).
	DSN string
	// Files are the migration files Check may replay to rebuild, on
	// PostgreSQL, what the environment's database has applied, by
	// application: the deployment's releases' files, and for applications
	// that are not in the deployment, the files of their earlier releases.
	// A file is used only when its checksum is the applied one.
	Files map[string][]File

	// created, when set (tests), is told the name of each scratch
	// database Check creates.
	created func(name string)
}

// ShadowCheck is what Check found: it is kept in the plan.
type ShadowCheck struct {
	// Database says what the shadow was: "sqlite: schema copy of …" or
	// "postgres: scratch database … replaying N applied migrations".
	Database string `json:"database"`
	// Setup is how long building the shadow took.
	Setup time.Duration `json:"setup"`
	// Duration is how long the plan's groups took on the shadow, together.
	Duration time.Duration `json:"duration"`
	// Time is when the check ran.
	Time time.Time `json:"time"`
}

// Check runs plan's groups, each with its transaction grouping, on a shadow
// of db: a database built for the purpose with db's schema and no rows
// (SQLite: a scratch file in sh.Dir with the statements of db's
// sqlite_master; PostgreSQL: a scratch database cutover_shadow_<random> on
// the server of sh.DSN, or of db.DSN, in which the migrations db has
// applied are replayed from sh.Files, in the order they were applied). It
// only reads db (its schema, its bookkeeping rows); the shadow is removed
// when Check returns. On success it records in plan the time each group
// took (Group.ShadowDuration) and plan.Shadow. Then it runs, on the same
// shadow, the contract phase, its down plan and the expand phase's down
// plan (laterPlans). A plan with nothing pending in either phase returns
// at once.
//
// Errors: a *StatementError (kind FailedPrecondition or DeadlineExceeded)
// when a statement of the plan fails on the shadow, its Outcome saying so;
// errkind.FailedPrecondition when the shadow cannot be built (an applied
// migration whose file is not in sh.Files, one that fails to replay, a role
// that may not create databases); errkind.Unavailable when a database
// cannot be reached; errkind.InvalidArgument for a bad DB or plan.
func Check(ctx context.Context, db DB, plan *Plan, sh Shadow) error {
	if plan.Empty() && plan.Contract.Empty() {
		return nil
	}
	if err := db.Validate(); err != nil {
		return err
	}
	for _, q := range append([]*Plan{plan}, laterPlans(plan)...) {
		if q.Empty() {
			continue
		}
		if err := checkPlan(db, q); err != nil {
			return err
		}
	}
	start := time.Now()
	var (
		shadow  DB
		what    string
		cleanup func()
		err     error
	)
	switch db.Driver {
	case DriverSQLite:
		shadow, what, cleanup, err = sqliteShadow(ctx, db, sh.Dir)
	default:
		shadow, what, cleanup, err = postgresShadow(ctx, db, plan, sh)
	}
	if err != nil {
		return err
	}
	defer cleanup()
	setup := time.Since(start)
	took, err := runOnShadow(ctx, shadow, plan)
	if err != nil {
		var se *StatementError
		if errors.As(err, &se) {
			se.Outcome = fmt.Sprintf("found at prepare on a shadow database (%s); the environment's database was not touched", what)
			return se
		}
		return fmt.Errorf("running the script on a shadow database (%s): %w", what, err)
	}
	var total time.Duration
	for i := range plan.Groups {
		plan.Groups[i].ShadowDuration = took[i]
		total += took[i]
	}
	plan.Shadow = &ShadowCheck{Database: what, Setup: setup, Duration: total, Time: start.UTC()}
	return nil
}

// runOnShadow runs every group of plan on shadow and returns how long each
// took.
func runOnShadow(ctx context.Context, shadow DB, plan *Plan) ([]time.Duration, error) {
	pool, conn, err := open(ctx, shadow, shadow.DSN)
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	defer conn.Close()
	for _, s := range setUpSQL(shadow) {
		if _, err := conn.ExecContext(ctx, s); err != nil {
			kind, note := classify(ctx, shadow, err)
			return nil, fmt.Errorf("preparing the shadow database: %s%s: %w", redactIn(err.Error(), shadow.DSN), note, kind)
		}
	}
	took := make([]time.Duration, len(plan.Groups))
	for gi := range plan.Groups {
		t0 := time.Now()
		if err := runGroup(ctx, shadow, conn, plan, gi); err != nil {
			return nil, err
		}
		took[gi] = time.Since(t0)
	}
	for _, q := range laterPlans(plan) {
		for gi := range q.Groups {
			if err := runGroup(ctx, shadow, conn, q, gi); err != nil {
				return nil, err
			}
		}
	}
	return took, nil
}

// laterPlans are the plans Check runs on the shadow after plan's groups,
// in this order: the contract phase, its down plan, the expand phase's down
// plan. So prepare proves that each runs, and that each down plan runs
// after what it undoes.
func laterPlans(plan *Plan) []*Plan {
	var out []*Plan
	if c := plan.Contract; c != nil {
		out = append(out, c)
		if c.Down != nil {
			out = append(out, c.Down)
		}
	}
	if plan.Down != nil {
		out = append(out, plan.Down)
	}
	return out
}

// sqliteShadow makes a SQLite file in dir with db's schema (every table,
// index, view and trigger of its sqlite_master, in that order, and its
// user_version) and no rows. A database file that does not exist gives an
// empty shadow.
func sqliteShadow(ctx context.Context, db DB, dir string) (DB, string, func(), error) {
	path, q, _ := sqliteParts(db.DSN) // Validate parsed it
	var objects []sqliteObject
	var userVersion int64
	ok, err := sqliteExists(path)
	if err != nil {
		return DB{}, "", nil, err
	}
	if ok {
		if objects, userVersion, err = readSQLiteSchema(ctx, db); err != nil {
			return DB{}, "", nil, err
		}
	}
	if dir == "" {
		dir = os.TempDir()
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return DB{}, "", nil, fmt.Errorf("shadow database: %v: %w", err, errkind.Unavailable)
	}
	tmp, err := os.MkdirTemp(dir, "shadow-")
	if err != nil {
		return DB{}, "", nil, fmt.Errorf("shadow database: %v: %w", err, errkind.Unavailable)
	}
	cleanup := func() { _ = os.RemoveAll(tmp) }
	// The environment's URI parameters (such as _pragma=foreign_keys(1))
	// apply to the shadow too; not those that would make it read-only.
	for _, k := range []string{"mode", "immutable", "vfs", "cache"} {
		q.Del(k)
	}
	shadowPath := filepath.Join(tmp, "shadow.db")
	dsn := "file:" + sqlitePathEscaper.Replace(shadowPath)
	if len(q) > 0 {
		dsn += "?" + q.Encode()
	}
	shadow := DB{Driver: DriverSQLite, DSN: dsn, StatementTimeout: db.StatementTimeout, LockTimeout: db.LockTimeout}
	if err := replaySQLiteSchema(ctx, shadow, objects, userVersion); err != nil {
		cleanup()
		return DB{}, "", nil, err
	}
	what := fmt.Sprintf("sqlite: a scratch file with the schema of %s (%d object(s)) and no rows", path, len(objects))
	if !ok {
		what = fmt.Sprintf("sqlite: an empty scratch file (%s does not exist yet)", path)
	}
	return shadow, what, cleanup, nil
}

// sqliteObject is one row of sqlite_master.
type sqliteObject struct {
	kind, name, sql string
}

// readSQLiteSchema reads db's sqlite_master (read-only): tables first, then
// indexes, views and triggers, each in the order of their rows; SQLite's
// own objects (sqlite_sequence, automatic indexes) are left out.
func readSQLiteSchema(ctx context.Context, db DB) ([]sqliteObject, int64, error) {
	uri, _, err := sqliteReadOnlyDSN(db.DSN)
	if err != nil {
		return nil, 0, fmt.Errorf("database %s: %v: %w", db, err, errkind.InvalidArgument)
	}
	pool, conn, err := open(ctx, db, uri)
	if err != nil {
		return nil, 0, err
	}
	defer pool.Close()
	defer conn.Close()
	fail := func(err error) error {
		kind, note := classify(ctx, db, err)
		return fmt.Errorf("reading the schema of %s for the shadow database: %s%s; nothing was changed: %w", db, redactIn(err.Error(), db.DSN), note, kind)
	}
	if _, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA busy_timeout = %d", sqliteBusy(db).Milliseconds())); err != nil {
		return nil, 0, fail(err)
	}
	rows, err := conn.QueryContext(ctx, `SELECT type, name, sql FROM sqlite_master
		WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite\_%' ESCAPE '\'
		ORDER BY CASE type WHEN 'table' THEN 0 WHEN 'index' THEN 1 WHEN 'view' THEN 2 ELSE 3 END, rowid`)
	if err != nil {
		return nil, 0, fail(err)
	}
	defer rows.Close()
	var out []sqliteObject
	for rows.Next() {
		var o sqliteObject
		if err := rows.Scan(&o.kind, &o.name, &o.sql); err != nil {
			return nil, 0, fail(err)
		}
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fail(err)
	}
	var uv int64
	if err := conn.QueryRowContext(ctx, "PRAGMA user_version").Scan(&uv); err != nil {
		return nil, 0, fail(err)
	}
	return out, uv, nil
}

// replaySQLiteSchema creates objects in the (new) shadow database. A table
// that exists already is skipped: a virtual table creates its own tables.
func replaySQLiteSchema(ctx context.Context, shadow DB, objects []sqliteObject, userVersion int64) error {
	pool, conn, err := open(ctx, shadow, shadow.DSN)
	if err != nil {
		return err
	}
	defer pool.Close()
	defer conn.Close()
	for _, o := range objects {
		if o.kind == "table" {
			var n int
			if err := conn.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE name = ?`, o.name).Scan(&n); err == nil && n > 0 {
				continue
			}
		}
		if _, err := conn.ExecContext(ctx, o.sql); err != nil {
			return fmt.Errorf("building the shadow database: copying %s %s failed: %v; the environment's database was not touched: %w", o.kind, o.name, err, errkind.FailedPrecondition)
		}
	}
	if userVersion != 0 {
		if _, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", userVersion)); err != nil {
			return fmt.Errorf("building the shadow database: %v: %w", err, errkind.FailedPrecondition)
		}
	}
	return nil
}

// postgresShadow creates a scratch database on the server of sh.DSN (or
// db.DSN) and replays in it, in the order they were applied, the
// migrations plan.Applied lists, from sh.Files.
func postgresShadow(ctx context.Context, db DB, plan *Plan, sh Shadow) (DB, string, func(), error) {
	replay, missing := replayList(plan.Applied, sh.Files)
	admin := DB{Driver: DriverPostgres, DSN: sh.DSN, StatementTimeout: db.StatementTimeout}
	if admin.DSN == "" {
		admin.DSN = db.DSN
	} else if err := admin.Validate(); err != nil {
		return DB{}, "", nil, fmt.Errorf("shadow_dsn: %w", err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := ShadowPrefix + hex.EncodeToString(b[:])
	pool, conn, err := open(ctx, admin, admin.DSN)
	if err != nil {
		return DB{}, "", nil, fmt.Errorf("shadow database: %w", err)
	}
	defer pool.Close()
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42501" { // insufficient_privilege
			return DB{}, "", nil, fmt.Errorf("prepare checks the SQL script on a scratch database and cannot create one on %s: %s; nothing was changed: grant the role CREATEDB (ALTER ROLE … CREATEDB), or set the environment's database.shadow_dsn to a role that may create databases: %w",
				admin, redactIn(err.Error(), admin.DSN), errkind.FailedPrecondition)
		}
		kind, note := classify(ctx, admin, err)
		return DB{}, "", nil, fmt.Errorf("creating the shadow database %s on %s: %s%s: %w", name, admin, redactIn(err.Error(), admin.DSN), note, kind)
	}
	if sh.created != nil {
		sh.created(name)
	}
	cleanup := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		pool, conn, err := open(ctx, admin, admin.DSN)
		if err != nil {
			return
		}
		defer pool.Close()
		defer conn.Close()
		if _, err := conn.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			_, _ = conn.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name) // before PostgreSQL 13
		}
	}
	shadow := DB{Driver: DriverPostgres, DSN: withDatabase(admin.DSN, name), StatementTimeout: db.StatementTimeout, LockTimeout: db.LockTimeout}
	if err := replayApplied(ctx, shadow, replay); err != nil {
		cleanup()
		return DB{}, "", nil, err
	}
	host := "the environment's server"
	if sh.DSN != "" {
		host = "the server of shadow_dsn"
	}
	if cfg, err := pgx.ParseConfig(admin.DSN); err == nil {
		host = fmt.Sprintf("%s:%d", cfg.Host, cfg.Port)
	}
	what := fmt.Sprintf("postgres: scratch database %s on %s, from the %d migration(s) the environment has applied, no rows", name, host, len(replay))
	if len(missing) > 0 {
		what += fmt.Sprintf("; not replayed, their files being in no release the controller keeps: %s (what they created is missing from the shadow)", strings.Join(missing, ", "))
	}
	return shadow, what, cleanup, nil
}

// withDatabase returns dsn with its database set to name.
func withDatabase(dsn, name string) string {
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		u.Path = "/" + name
		return u.String()
	}
	return dsn + " dbname=" + name
}

// replayList returns the files of the applied migrations, in the order
// they were applied (then by deployment, application and version), and
// the applied migrations whose files are not in files.
func replayList(applied []Applied, files map[string][]File) ([]Step, []string) {
	rows := make([]Applied, len(applied))
	copy(rows, applied)
	sort.SliceStable(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		if a.AppliedAt != b.AppliedAt {
			return a.AppliedAt < b.AppliedAt
		}
		if a.DeploymentID != b.DeploymentID {
			return a.DeploymentID < b.DeploymentID
		}
		if a.Application != b.Application {
			return a.Application < b.Application
		}
		return a.Version < b.Version
	})
	var out []Step
	var missing []string
	for _, a := range rows {
		var found *File
		for i, f := range files[a.Application] {
			if f.Version == a.Version && f.Checksum == a.Checksum {
				found = &files[a.Application][i]
				break
			}
		}
		if found == nil {
			missing = append(missing, fmt.Sprintf("application %q migration %d (%s, checksum %s)", a.Application, a.Version, a.Name, a.Checksum))
			continue
		}
		out = append(out, Step{Pending: Pending{Application: a.Application, Version: a.Version, Name: a.Name, Checksum: a.Checksum, NoTransaction: found.NoTransaction}, SQL: found.SQL})
	}
	return out, missing
}

// replayApplied runs steps on shadow, each transactional file in a
// transaction.
func replayApplied(ctx context.Context, shadow DB, steps []Step) error {
	if len(steps) == 0 {
		return nil
	}
	pool, conn, err := open(ctx, shadow, shadow.DSN)
	if err != nil {
		return err
	}
	defer pool.Close()
	defer conn.Close()
	for _, s := range steps {
		if err := replayStep(ctx, shadow, conn, s); err != nil {
			return fmt.Errorf("building the shadow database: the migration the environment's database applied as application %q %s fails when replayed on a fresh database: %v; the environment's database was not touched: make the applied migrations replay cleanly: %w",
				s.Application, s.Name, err, errkind.FailedPrecondition)
		}
	}
	// Rows the replayed migrations inserted are removed: like the SQLite
	// shadow, it holds the schema and no rows.
	var tables []string
	rows, err := conn.QueryContext(ctx, `SELECT format('%I.%I', schemaname, tablename) FROM pg_tables
		WHERE schemaname NOT IN ('pg_catalog', 'information_schema') AND schemaname NOT LIKE 'pg\_%'`)
	if err == nil {
		for rows.Next() {
			var t string
			if err = rows.Scan(&t); err != nil {
				break
			}
			tables = append(tables, t)
		}
		if err == nil {
			err = rows.Err()
		}
		rows.Close()
	}
	if err == nil && len(tables) > 0 {
		_, err = conn.ExecContext(ctx, "TRUNCATE "+strings.Join(tables, ", ")+" CASCADE")
	}
	if err != nil {
		return fmt.Errorf("building the shadow database: removing the rows the replayed migrations inserted: %v: %w", err, errkind.FailedPrecondition)
	}
	return nil
}

func replayStep(ctx context.Context, shadow DB, conn *sql.Conn, s Step) error {
	stmts, err := splitStatements(shadow.Driver, s.SQL)
	if err != nil {
		return err
	}
	if !s.NoTransaction {
		if _, err := conn.ExecContext(ctx, "BEGIN"); err != nil {
			return err
		}
	}
	for _, st := range stmts {
		if _, err := conn.ExecContext(ctx, st.SQL); err != nil {
			if !s.NoTransaction {
				rollback(conn)
			}
			return fmt.Errorf("statement %d (line %d): %v", st.Index, st.Line, err)
		}
	}
	if !s.NoTransaction {
		if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
			rollback(conn)
			return err
		}
	}
	return nil
}
