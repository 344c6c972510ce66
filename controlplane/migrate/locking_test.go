package migrate

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/pkg/errkind"
)

func TestConcurrentExecutes(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		db := be.fresh(t)
		slow := "SELECT pg_sleep(0.3);"
		if be.driver == DriverSQLite {
			slow = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 30000) SELECT count(*) FROM c;"
		}
		files := mkFiles(t, "0001_users.up.sql", sqlUsers, "0002_slow.up.sql", slow+"\n"+sqlEmail)
		p := generate(t, db, files)
		var wg sync.WaitGroup
		errs := make([]error, 2)
		start := make(chan struct{})
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, errs[i] = Execute(ctxT(t), db, p)
			}()
		}
		close(start)
		wg.Wait()
		var ok, refused int
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case errors.Is(err, errkind.FailedPrecondition) && strings.Contains(err.Error(), "changed since prepare"),
				errors.Is(err, errkind.Unavailable), errors.Is(err, errkind.DeadlineExceeded):
				refused++
			default:
				t.Errorf("unexpected error: %v", err)
			}
		}
		t.Logf("outcomes: %v", errs)
		if ok != 1 || refused != 1 {
			t.Fatalf("want one success and one clean refusal, got %v", errs)
		}
		if got := column(t, connect(t, db), "SELECT name FROM users"); len(got) != 1 {
			t.Errorf("users rows = %q: applied twice?", got)
		}
	})
}

func TestMigrationLockIsHonoured(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		db := be.fresh(t)
		p := generate(t, db, threeFiles(t))
		// Another cutover run holds the lock.
		var release func()
		if be.driver == DriverPostgres {
			holder, err := connect(t, db).Conn(ctxT(t))
			if err != nil {
				t.Fatal(err)
			}
			defer holder.Close()
			unlock, err := lockPostgres(ctxT(t), db, holder)
			if err != nil {
				t.Fatal(err)
			}
			release = unlock
		} else {
			if err := os.WriteFile(db.DSN, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			unlock, err := lockSQLite(ctxT(t), db.DSN)
			if err != nil {
				t.Fatal(err)
			}
			release = unlock
		}
		before := snapshot(t, db)
		ctx, cancel := context.WithTimeout(ctxT(t), 300*time.Millisecond)
		defer cancel()
		_, err := Execute(ctx, db, p)
		if !errors.Is(err, errkind.DeadlineExceeded) {
			t.Fatalf("want DeadlineExceeded while the lock is held, got %v", err)
		}
		mentions(t, err, "migration lock", "nothing was changed")
		unchanged(t, db, before, "Execute ran without the lock")
		release()
		if _, err := Execute(ctxT(t), db, p); err != nil {
			t.Fatalf("Execute after the lock was released: %v", err)
		}
	})
}

func TestStatementTimeout(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		db := be.fresh(t)
		db.StatementTimeout = 200 * time.Millisecond
		stuck := "SELECT pg_sleep(5);"
		if be.driver == DriverSQLite {
			stuck = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000000) SELECT count(*) FROM c;"
		}
		files := mkFiles(t, "0001_users.up.sql", sqlUsers, "0002_stuck.up.sql", "CREATE TABLE t2 (x TEXT);\n"+stuck)
		p := generate(t, db, files)
		// Unbounded, the stuck statement would succeed (pg_sleep(5)) or run
		// for minutes (the SQLite count): failing with DeadlineExceeded is
		// the proof that statement_timeout cut it. No wall-clock bound, which
		// a loaded CI machine could break.
		_, err := Execute(ctxT(t), db, p)
		var se *StatementError
		if !errors.As(err, &se) || !errors.Is(err, errkind.DeadlineExceeded) {
			t.Fatalf("want a *StatementError of kind DeadlineExceeded, got %v", err)
		}
		if se.File != "0002_stuck.up.sql" || se.Statement != 2 || !strings.Contains(err.Error(), "statement_timeout is 200ms") {
			t.Errorf("error = %v", err)
		}
		if got := snapshot(t, db); strings.Contains(got, "rows of users") || strings.Contains(got, "rows of t2") {
			t.Errorf("the rolled-back group left tables:\n%s", got)
		}
	})
}

func TestLockTimeout(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		db := be.fresh(t)
		apply(t, db, "dep-0", AppFiles{Application: "hello", Files: mkFiles(t, "0001_users.up.sql", sqlUsers)})
		// Another session holds a lock, as a long transaction would.
		holder, err := connect(t, db).Conn(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		defer holder.Close()
		hold := "BEGIN; LOCK TABLE users IN ACCESS EXCLUSIVE MODE"
		if be.driver == DriverSQLite {
			hold = "BEGIN IMMEDIATE"
		}
		if _, err := holder.ExecContext(ctxT(t), hold); err != nil {
			t.Fatal(err)
		}
		defer holder.ExecContext(context.Background(), "ROLLBACK") //nolint:errcheck
		db.LockTimeout = 200 * time.Millisecond
		files := mkFiles(t, "0001_users.up.sql", sqlUsers, "0002_email.up.sql", sqlEmail)
		p := generate(t, db, files)
		began := time.Now()
		_, err = Execute(ctxT(t), db, p)
		if !errors.Is(err, errkind.DeadlineExceeded) {
			t.Fatalf("want DeadlineExceeded, got %v", err)
		}
		mentions(t, err, "lock_timeout is 200ms")
		if took := time.Since(began); took > 3*time.Second {
			t.Errorf("the blocked migration took %v to fail", took)
		}
	})
}
