// Package migrate generates and runs the SQL scripts of a deployment: stage
// 1 (prepare) calls Generate, which reads the environment database without
// writing to it and renders the exact script; stage 2 (continue) calls
// Execute, which runs that script under a database-level lock, one
// transaction per group, and refuses to run when the database changed in
// between.
//
// # Files
//
// An application's migrations are files NNNN_name.up.sql (expand: run in
// stage 2 before the swap) and NNNN_name.contract.sql (contract: run once
// every front-end swapped and passed its checks), NNNN a positive integer,
// gaps allowed, one version per migration whatever its phase. Beside
// either may sit NNNN_name.down.sql, which undoes it (File.Down); a
// migration without one, or with a line "-- cutover:irreversible" in
// either file, is irreversible. Load / LoadDir read a directory (other
// .sql names, duplicate versions and a down file without its migration are
// errkind.InvalidArgument, naming the files); ParseFile makes one File
// from a name and content. A file whose first line is
// "-- cutover:no-transaction" runs outside any transaction, alone.
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
// Generate(ctx, db, deploymentID, []AppFiles) returns a *Plan. Pass every
// application of the deployment, with empty Files when it has none: an
// applied migration of a listed application that its files lack is drift.
// The plan holds the pending migrations (per application in version order,
// applications in the order given), Groups (consecutive transactional files
// share one transaction; a no-transaction file is a group of its own, after
// the transactional ones before it, its bookkeeping row written right after
// it), the Script (the groups rendered as text: a header, a comment per
// file, BEGIN/COMMIT, the bookkeeping INSERTs), Basis (a digest of every
// bookkeeping row read, all applications') and Applied (those rows). A Plan
// is plain data and round-trips through encoding/json; Execute refuses
// (errkind.InvalidArgument) a plan whose Script is not its Groups or whose
// Driver is not the database's. Drift (an applied migration whose checksum
// differs from the release's file, one the release no longer has, a new file
// numbered below an applied one) is errkind.FailedPrecondition naming
// application, version, files and checksums. Generate also refuses
// (InvalidArgument) a transactional file that holds BEGIN/COMMIT/ROLLBACK,
// or one whose statements cannot be split.
//
// # Phases and downs
//
// The plan Generate returns is the expand phase; Plan.Contract holds the
// contract phase (its basis: the rows once expand ran), and each phase's
// Plan.Down the down plan that undoes it (its reversible migrations,
// newest first, each followed by the DELETE of its bookkeeping row; its
// basis covers the rows of the deployment's applications only). The
// migrations no down plan undoes are in Plan.Irreversible. Check runs, on
// the shadow, expand, contract, the contract's down and the expand's down,
// in that order. Execute and Resume run any of these plans (phases.go).
//
// # Execution
//
// Execute(ctx, db, plan) returns at once, without connecting, when the plan
// has nothing pending. Otherwise it takes the migration lock, waiting as
// long as ctx allows (PostgreSQL: pg_advisory_lock(27995165641041266) on the
// one connection it uses throughout; SQLite: an flock on
// "<file>.cutover-lock"), applies the timeouts (PostgreSQL: SET
// statement_timeout / lock_timeout; SQLite: busy_timeout = LockTimeout, or
// 10s, and StatementTimeout as a per-statement deadline), creates the
// bookkeeping table if missing, compares the rows with plan.Basis
// (different: errkind.FailedPrecondition "the database changed since
// prepare: …; nothing was run: prepare again"), then runs the groups, each
// transactional one in one transaction (SQLite: BEGIN IMMEDIATE) with its
// bookkeeping rows. A failing statement rolls back its group and returns a
// *StatementError (application, file, statement index, line, the database's
// message, what stayed applied); its kind is errkind.DeadlineExceeded when a
// statement or lock timeout ran out, errkind.FailedPrecondition otherwise.
// Groups committed before the failure stay applied and are listed in the
// Result, which is never nil. Waiting for the migration lock past ctx is
// DeadlineExceeded; an unreachable database is Unavailable; in both cases
// nothing changed.
//
// Resume(ctx, db, plan) is Execute for a caller that may have run the same
// plan before and could not record how far it got (a controller that died
// between the database's commit and its own): groups whose bookkeeping rows,
// with the plan's deployment id, sit on top of the basis are skipped
// (Result.Skipped), the rest run.
//
// Files are split into statements at ';' outside quotes, comments ("--",
// "/* */", nested on PostgreSQL), PostgreSQL dollar-quoted strings and
// E'…' strings, parentheses, and trigger or BEGIN ATOMIC bodies.
package migrate
