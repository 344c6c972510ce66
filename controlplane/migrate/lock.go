package migrate

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/cutover-dev/cutover/pkg/errkind"
)

// pgLockKey is the pg_advisory_lock key every cutover run takes on a
// PostgreSQL database: the bytes of "cutover" as a big-endian integer.
const pgLockKey int64 = 27995165641041266

// lockFileSuffix names the file beside a SQLite database that cutover locks
// (flock) while it migrates that database. A separate file, because closing
// any descriptor of the database file itself would drop SQLite's own locks.
const lockFileSuffix = ".cutover-lock"

// lockPollInterval is how often a waiting run retries the SQLite lock file.
const lockPollInterval = 20 * time.Millisecond

// unlocker releases a migration lock.
type unlocker func()

// lockPostgres takes the advisory lock on conn, waiting as long as ctx
// allows. The lock is the session's: it lasts until unlocked or until conn
// closes.
func lockPostgres(ctx context.Context, db DB, conn *sql.Conn) (unlocker, error) {
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, pgLockKey); err != nil {
		return nil, fmt.Errorf("waiting for the migration lock (pg_advisory_lock(%d)) on %s, held by another cutover run: %s; nothing was changed: %w",
			pgLockKey, db, redactIn(err.Error(), db.DSN), waitKind(ctx))
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, _ = conn.ExecContext(ctx, `SELECT pg_advisory_unlock($1)`, pgLockKey)
	}, nil
}

// lockSQLite takes an exclusive flock on the file beside the database at
// path, retrying until ctx ends. The kernel drops the lock if the process
// dies.
func lockSQLite(ctx context.Context, path string) (unlocker, error) {
	name := path + lockFileSuffix
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening the migration lock file %q: %v; nothing was changed: %w", name, err, errkind.Unavailable)
	}
	t := time.NewTicker(lockPollInterval)
	defer t.Stop()
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() {
				_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
				_ = f.Close()
			}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			_ = f.Close()
			return nil, fmt.Errorf("locking %q: %v; nothing was changed: %w", name, err, errkind.Unavailable)
		}
		select {
		case <-ctx.Done():
			_ = f.Close()
			return nil, fmt.Errorf("waiting for the migration lock %q, held by another cutover run: %v; nothing was changed: %w", name, ctx.Err(), waitKind(ctx))
		case <-t.C:
		}
	}
}

// waitKind is the error kind for a wait that ended.
func waitKind(ctx context.Context) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return errkind.DeadlineExceeded
	}
	return errkind.Unavailable
}
