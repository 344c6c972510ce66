// Package migrate generates and runs the SQL scripts of a deployment: stage
// 1 (prepare) calls Generate, which reads the environment database without
// writing to it and renders the exact script; stage 2 (continue) calls
// Execute, which runs that script under a database-level lock, one
// transaction per group, and refuses to run when the database changed in
// between.
//
// # Files
//
// An application's migrations are files NNNN_name.up.sql (NNNN a positive
// integer, gaps allowed). Load / LoadDir read a directory (other .sql names
// and duplicate versions are errkind.InvalidArgument, naming the files);
// ParseFile makes one File from a name and content. A file whose first line
// is "-- cutover:no-transaction" runs outside any transaction, alone.
//
// # Databases
//
// DB{Driver, DSN, StatementTimeout, LockTimeout} names the database:
// "sqlite" (modernc.org/sqlite, pure Go; DSN a file path or "file:" URI) or
// "postgres" (pgx through database/sql; DSN a URL or key=value pairs).
// RedactDSN hides a DSN's password; DB's String and LogValue use it.
//
// # Bookkeeping
//
// The table cutover_schema_migrations (application, version, name,
// checksum, applied_at, deployment_id; primary key application+version)
// holds one row per applied migration. Its absence means none applied.
// Execute creates it.
//
// # Plans
//
// Generate(ctx, db, deploymentID, []AppFiles) returns a *Plan: the pending
// migrations (per application in version order, applications in the order
// given), Groups (consecutive transactional files share one transaction; a
// no-transaction file is a group of its own, after the transactional ones
// before it, its bookkeeping row written right after it), the Script (the
// groups rendered as text: header comment per file, BEGIN/COMMIT, the
// bookkeeping INSERTs), and Basis (a digest of all bookkeeping rows read).
// A Plan is plain data and round-trips through encoding/json; Execute
// refuses a plan whose Script is not its Groups. Drift (an applied
// migration whose checksum differs from the release's file, one the release
// no longer has, a new file numbered below an applied one) is
// errkind.FailedPrecondition naming application, version, files and
// checksums.
//
// # Execution
//
// Execute(ctx, db, plan) returns at once, without connecting, when the plan
// has nothing pending. Otherwise it takes the migration lock (PostgreSQL:
// pg_advisory_lock(27995165641041266) on the one connection it uses
// throughout; SQLite: an flock on "<file>.cutover-lock", then BEGIN
// IMMEDIATE with a busy timeout), applies the timeouts (PostgreSQL: SET
// statement_timeout / lock_timeout; SQLite: busy_timeout = LockTimeout, or
// 10s, and StatementTimeout as a per-statement deadline), creates the
// bookkeeping table if missing, compares the rows with plan.Basis
// (different: errkind.FailedPrecondition "the database changed since
// prepare: …; … prepare again", nothing run), then runs the groups. A
// failing statement rolls back its group and returns a *StatementError
// (file, statement index, line, the database's message, what stayed
// applied); timeouts are errkind.DeadlineExceeded.
//
// Files are split into statements at ';' outside quotes, comments ("--",
// "/* */", nested on PostgreSQL), PostgreSQL dollar-quoted strings and
// E'…' strings, parentheses, and trigger or BEGIN ATOMIC bodies.
package migrate
