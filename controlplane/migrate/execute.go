package migrate

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cutover-dev/cutover/pkg/errkind"
)

// defaultSQLiteBusy is SQLite's busy timeout when DB.LockTimeout is 0.
const defaultSQLiteBusy = 10 * time.Second

// Result is what Execute did.
type Result struct {
	// Applied are the migrations applied and recorded, in order. After a
	// failure, those of the groups that committed before it.
	Applied []Pending `json:"applied"`
	// Skipped are the migrations Resume found applied and recorded by an
	// earlier run of the same plan, and did not run again.
	Skipped []Pending `json:"skipped,omitempty"`
	// Duration is how long Execute took, lock wait included.
	Duration time.Duration `json:"duration"`
}

// StatementError is the error Execute returns when the database refuses a
// statement of a migration file (or its bookkeeping row). errors.Is finds
// its kind (errkind.DeadlineExceeded for a statement or lock timeout,
// errkind.FailedPrecondition otherwise) and the driver's error.
type StatementError struct {
	Application string
	Version     int64
	File        string
	// Statement is the statement's 1-based index in File; 0 for the
	// bookkeeping row.
	Statement int
	// Line is the line of File where the statement starts (the error's
	// line when the database reports a position).
	Line int
	// SQL is the start of the statement, on one line.
	SQL string
	// Message is the database's message.
	Message string
	// Outcome says what was rolled back and what stays applied.
	Outcome string

	kind  error
	cause error
}

// Error names the file, the position, the database's message and the
// outcome.
func (e *StatementError) Error() string {
	where := fmt.Sprintf("statement %d (line %d)", e.Statement, e.Line)
	if e.Statement == 0 {
		where = "its bookkeeping row"
	} else if e.SQL != "" {
		where = fmt.Sprintf("statement %d (line %d) `%s`", e.Statement, e.Line, e.SQL)
	}
	return fmt.Sprintf("application %q migration %s: %s failed: %s; %s", e.Application, e.File, where, e.Message, e.Outcome)
}

// Unwrap returns the kind and the driver's error.
func (e *StatementError) Unwrap() []error { return []error{e.kind, e.cause} }

// Execute runs plan against db. A plan with nothing pending returns at once
// without connecting. Otherwise Execute connects, takes the migration lock
// (PostgreSQL: pg_advisory_lock on one connection for the whole run;
// SQLite: an flock on "<file>.cutover-lock", plus BEGIN IMMEDIATE and a busy
// timeout against other writers), applies the timeouts, creates the
// bookkeeping table if missing, checks that the bookkeeping rows still have
// plan.Basis, and runs the groups in order: each transactional group in one
// transaction with its bookkeeping rows.
//
// Errors: errkind.InvalidArgument for a bad DB or a plan that is not
// Generate's for this driver; errkind.Unavailable or DeadlineExceeded when
// the database or the lock cannot be had (nothing changed);
// errkind.FailedPrecondition when the rows changed since Generate (nothing
// changed); a *StatementError when a statement fails: its group is rolled
// back, earlier groups stay applied and are listed in the Result.
func Execute(ctx context.Context, db DB, plan *Plan) (*Result, error) {
	return execute(ctx, db, plan, false)
}

// Resume is Execute for a plan that an earlier Execute (or Resume) may have
// run, wholly or in part, before its process died: the caller could not
// record how far it got. Under the migration lock, when the bookkeeping rows
// are the plan's basis plus the rows of its first k groups, written with
// the plan's deployment id, those k groups are not run again (they are
// listed in Result.Skipped) and the rest run as Execute would run them.
// Rows that are neither are errkind.FailedPrecondition, as with Execute.
//
// Only a caller that knows it may have run this very plan before should
// call Resume: two plans with the same deployment id (two controllers each
// numbering their own deployments) cannot be told apart by their rows, and
// Execute, unlike Resume, refuses the second.
func Resume(ctx context.Context, db DB, plan *Plan) (*Result, error) {
	return execute(ctx, db, plan, true)
}

func execute(ctx context.Context, db DB, plan *Plan, resume bool) (*Result, error) {
	start := time.Now()
	res := &Result{}
	if plan.Empty() {
		return res, nil
	}
	defer func() { res.Duration = time.Since(start) }()
	if err := db.Validate(); err != nil {
		return res, err
	}
	if err := checkPlan(db, plan); err != nil {
		return res, err
	}
	if db.Driver == DriverSQLite {
		path, _, _ := sqliteParts(db.DSN) // Validate parsed it
		unlock, err := lockSQLite(ctx, path)
		if err != nil {
			return res, err
		}
		defer unlock()
	}
	pool, conn, err := open(ctx, db, db.DSN)
	if err != nil {
		return res, err
	}
	defer pool.Close()
	defer conn.Close()
	if db.Driver == DriverPostgres {
		unlock, err := lockPostgres(ctx, db, conn)
		if err != nil {
			return res, err
		}
		defer unlock()
	}
	skip, err := setUp(ctx, db, conn, plan, resume)
	if err != nil {
		return res, err
	}
	for _, g := range plan.Groups[:skip] {
		for _, s := range g.Steps {
			res.Skipped = append(res.Skipped, s.Pending)
		}
	}
	for gi := skip; gi < len(plan.Groups); gi++ {
		if err := runGroup(ctx, db, conn, plan, gi); err != nil {
			return res, err
		}
		for _, s := range plan.Groups[gi].Steps {
			res.Applied = append(res.Applied, s.Pending)
		}
	}
	return res, nil
}

// checkPlan refuses a plan that Generate did not make for db's driver, or
// whose script is not its groups.
func checkPlan(db DB, plan *Plan) error {
	bad := func(what string) error {
		return fmt.Errorf("migration plan for deployment %q: %s; nothing was run: prepare again: %w", plan.DeploymentID, what, errkind.InvalidArgument)
	}
	if plan.Driver != db.Driver {
		return bad(fmt.Sprintf("it was generated for %q, the database is %q", plan.Driver, db.Driver))
	}
	var steps []Pending
	for _, g := range plan.Groups {
		if len(g.Steps) == 0 || (g.NoTransaction && len(g.Steps) != 1) {
			return bad("its groups are malformed")
		}
		for _, s := range g.Steps {
			steps = append(steps, s.Pending)
		}
	}
	if len(steps) != len(plan.Pending) {
		return bad("its pending list does not match its groups")
	}
	for i := range steps {
		if steps[i] != plan.Pending[i] {
			return bad("its pending list does not match its groups")
		}
	}
	if render(plan) != plan.Script {
		return bad("its script does not match its groups")
	}
	return nil
}

// setUp applies the timeouts, creates the bookkeeping table and checks the
// basis. With resume, it returns how many leading groups of plan an
// earlier run of it applied already.
func setUp(ctx context.Context, db DB, conn *sql.Conn, plan *Plan, resume bool) (int, error) {
	for _, s := range setUpSQL(db) {
		if _, err := conn.ExecContext(ctx, s); err != nil {
			kind, note := classify(ctx, db, err)
			return 0, fmt.Errorf("preparing the database %s (%s): %s%s; no migration was run: %w",
				db, strings.Join(strings.Fields(s)[:2], " "), redactIn(err.Error(), db.DSN), note, kind)
		}
	}
	if err := fence(ctx, db, conn); err != nil {
		return 0, err
	}
	rows, err := readRows(ctx, conn, db.Driver)
	if err != nil {
		kind, note := classify(ctx, db, err)
		return 0, fmt.Errorf("database %s: %s%s; no migration was run: %w", db, redactIn(err.Error(), db.DSN), note, kind)
	}
	got := plan.digestOf(rows)
	if got == plan.Basis {
		return 0, nil
	}
	if resume {
		for k := len(plan.Groups); k > 0; k-- {
			if plan.digestOf(rowsThrough(plan, k)) == got {
				return k, nil
			}
		}
	}
	if plan.isDown() {
		return 0, fmt.Errorf("the database's migrations of %s are not what the deployment left (%s); nothing was undone: the %s phase cannot be undone by cutover, undo it by hand: %w",
			strings.Join(plan.Scope, ", "), describeChange(plan.scoped(plan.Applied), plan.scoped(rows)), strings.TrimPrefix(plan.Phase, "down-"), errkind.FailedPrecondition)
	}
	return 0, fmt.Errorf("the database changed since prepare: %s; nothing was run: prepare again: %w",
		describeChange(plan.Applied, rows), errkind.FailedPrecondition)
}

// setUpSQL returns the statements that apply db's timeouts to a
// connection and create the bookkeeping table if it is missing.
func setUpSQL(db DB) []string {
	var stmts []string
	if db.Driver == DriverPostgres {
		if db.StatementTimeout > 0 {
			stmts = append(stmts, fmt.Sprintf("SET statement_timeout = %d", db.StatementTimeout.Milliseconds()))
		}
		if db.LockTimeout > 0 {
			stmts = append(stmts, fmt.Sprintf("SET lock_timeout = %d", db.LockTimeout.Milliseconds()))
		}
	} else {
		stmts = append(stmts, fmt.Sprintf("PRAGMA busy_timeout = %d", sqliteBusy(db).Milliseconds()))
	}
	return append(stmts, createTableSQL(db.Driver))
}

// runGroup runs group gi of plan: in one transaction unless it is a
// no-transaction group.
func runGroup(ctx context.Context, db DB, conn *sql.Conn, plan *Plan, gi int) error {
	g := plan.Groups[gi]
	kept := keptSummary(plan, gi)
	if g.NoTransaction {
		s := g.Steps[0]
		outcome := fmt.Sprintf("it ran outside a transaction, so the statements before this one in %s stay applied and its bookkeeping row was not written: repair by hand (or make the file safe to run again), then prepare again; %s", s.Name, kept)
		return runStep(ctx, db, conn, s, outcome)
	}
	if _, err := conn.ExecContext(ctx, beginSQL(db.Driver)); err != nil {
		kind, note := classify(ctx, db, err)
		return fmt.Errorf("starting the transaction of group %d of %d: %s%s; nothing of it ran; %s: %w",
			gi+1, len(plan.Groups), redactIn(err.Error(), db.DSN), note, kept, kind)
	}
	names := make([]string, len(g.Steps))
	for i, s := range g.Steps {
		names[i] = s.Name
	}
	rolledBack := fmt.Sprintf("the transaction of group %d of %d (%s) was rolled back, so none of its migrations is applied; %s",
		gi+1, len(plan.Groups), strings.Join(names, ", "), kept)
	for _, s := range g.Steps {
		if err := runStep(ctx, db, conn, s, rolledBack); err != nil {
			rollback(conn)
			return err
		}
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		rollback(conn)
		kind, note := classify(ctx, db, err)
		return fmt.Errorf("committing group %d of %d: %s%s; %s: %w", gi+1, len(plan.Groups), redactIn(err.Error(), db.DSN), note, rolledBack, kind)
	}
	return nil
}

// keptSummary says which groups before gi are applied.
func keptSummary(plan *Plan, gi int) string {
	if gi == 0 {
		return "no earlier group was run"
	}
	var names []string
	for _, g := range plan.Groups[:gi] {
		for _, s := range g.Steps {
			names = append(names, s.Name)
		}
	}
	return fmt.Sprintf("the earlier groups stay applied and recorded (%s)", strings.Join(names, ", "))
}

// rollback ends the open transaction on conn, even if ctx has ended.
func rollback(conn *sql.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, _ = conn.ExecContext(ctx, "ROLLBACK")
}

// runStep runs the statements of one file, then its bookkeeping row.
func runStep(ctx context.Context, db DB, conn *sql.Conn, s Step, outcome string) error {
	stmts, err := splitStatements(db.Driver, s.SQL)
	if err != nil { // Generate split it already
		return fmt.Errorf("application %q migration %s: %v: %w", s.Application, s.Name, err, errkind.InvalidArgument)
	}
	stmts = append(stmts, statement{SQL: s.Record})
	for _, st := range stmts {
		if err := execStatement(ctx, db, conn, st.SQL); err != nil {
			return statementError(ctx, db, s, st, outcome, err)
		}
	}
	return nil
}

// execStatement runs one statement; on SQLite, StatementTimeout bounds it.
func execStatement(ctx context.Context, db DB, conn *sql.Conn, query string) error {
	if db.Driver == DriverSQLite && db.StatementTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, db.StatementTimeout)
		defer cancel()
	}
	_, err := conn.ExecContext(ctx, query)
	return err
}

// statementError makes the *StatementError for err, raised by st of s.
func statementError(ctx context.Context, db DB, s Step, st statement, outcome string, err error) error {
	kind, note := classify(ctx, db, err)
	e := &StatementError{
		Application: s.Application, Version: s.Version, File: s.Name,
		Statement: st.Index, Line: st.Line, Outcome: outcome, SQL: excerpt(st.SQL, 120),
		Message: redactIn(err.Error(), db.DSN), kind: kind, cause: err,
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		if pgErr.Position > 0 && st.Index > 0 {
			runes := []rune(st.SQL)
			if p := int(pgErr.Position); p <= len(runes) {
				e.Line += strings.Count(string(runes[:p-1]), "\n")
			}
		}
		if pgErr.Detail != "" {
			e.Message += "; detail: " + pgErr.Detail
		}
		if pgErr.Hint != "" {
			e.Message += "; hint: " + pgErr.Hint
		}
	}
	e.Message += note
	if !s.NoTransaction && ((pgErr != nil && pgErr.Code == "25001") || strings.Contains(err.Error(), "within a transaction")) {
		e.Message += fmt.Sprintf("; this statement cannot run in a transaction: start the file with %q", NoTransactionMarker)
	}
	return e
}

// classify returns the error kind for a database error, and a note naming
// the timeout that ran out, if one did: errkind.DeadlineExceeded for a
// statement or lock timeout (or ctx's deadline), FailedPrecondition when
// the database refused the statement, Unavailable when it could not be
// asked.
func classify(ctx context.Context, db DB, err error) (kind error, note string) {
	var pgErr *pgconn.PgError
	isPG := errors.As(err, &pgErr)
	var coded interface{ Code() int } // *sqlite.Error
	isSQLite := db.Driver == DriverSQLite && errors.As(err, &coded)
	switch {
	case isPG && pgErr.Code == "57014" && ctx.Err() == nil: // query_canceled
		return errkind.DeadlineExceeded, fmt.Sprintf(" (statement_timeout is %s)", db.StatementTimeout)
	case isPG && pgErr.Code == "55P03": // lock_not_available
		return errkind.DeadlineExceeded, fmt.Sprintf(" (lock_timeout is %s)", db.LockTimeout)
	case ctx.Err() != nil:
		return waitKind(ctx), ""
	case isSQLite && (coded.Code()&0xff == 5 || coded.Code()&0xff == 6): // SQLITE_BUSY, SQLITE_LOCKED
		return errkind.DeadlineExceeded, fmt.Sprintf(" (another connection holds the database; lock_timeout is %s)", sqliteBusy(db))
	case db.Driver == DriverSQLite && db.StatementTimeout > 0 && (errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "interrupted")):
		return errkind.DeadlineExceeded, fmt.Sprintf(" (statement_timeout is %s)", db.StatementTimeout)
	case isPG || isSQLite:
		return errkind.FailedPrecondition, ""
	}
	return errkind.Unavailable, ""
}

// sqliteBusy is SQLite's busy timeout for db.
func sqliteBusy(db DB) time.Duration {
	if db.LockTimeout > 0 {
		return db.LockTimeout
	}
	return defaultSQLiteBusy
}
