package migrate

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/cutover-dev/cutover/pkg/errkind"
)

// epochTable fences controllers that share one etcd (docs/architecture.md,
// "Several controllers"): one row, the highest leader epoch that has run
// SQL on this database. Under the migration lock, a run from a lower epoch
// (a leader that was paused past its lease and woke up after its successor
// ran the migrations) is refused before any statement.
const epochTable = "cutover_leader_epoch"

func createEpochTableSQL(driver string) string {
	if driver == DriverPostgres {
		return `CREATE TABLE IF NOT EXISTS ` + epochTable + ` (id smallint PRIMARY KEY CHECK (id = 1), epoch bigint NOT NULL)`
	}
	return `CREATE TABLE IF NOT EXISTS ` + epochTable + ` (id INTEGER PRIMARY KEY CHECK (id = 1), epoch INTEGER NOT NULL)`
}

// fence records db.Epoch as the database's leader epoch, or refuses when a
// higher one is recorded. It runs under the migration lock, before any
// migration. Epoch 0 (a controller that is not elected) is not fenced and
// leaves the table alone.
func fence(ctx context.Context, db DB, conn *sql.Conn) error {
	if db.Epoch == 0 {
		return nil
	}
	if _, err := conn.ExecContext(ctx, createEpochTableSQL(db.Driver)); err != nil {
		kind, note := classify(ctx, db, err)
		return fmt.Errorf("database %s: creating %s: %s%s; no migration was run: %w", db, epochTable, redactIn(err.Error(), db.DSN), note, kind)
	}
	var seen int64
	err := conn.QueryRowContext(ctx, `SELECT epoch FROM `+epochTable+` WHERE id = 1`).Scan(&seen)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		kind, note := classify(ctx, db, err)
		return fmt.Errorf("database %s: reading %s: %s%s; no migration was run: %w", db, epochTable, redactIn(err.Error(), db.DSN), note, kind)
	}
	if uint64(seen) > db.Epoch {
		return fmt.Errorf("database %s: a newer leader (epoch %d) has run migrations on it, and this controller's leadership (epoch %d) is over; no migration was run: %w",
			db, seen, db.Epoch, &errkind.NotLeader{})
	}
	if uint64(seen) == db.Epoch {
		return nil
	}
	upsert := `INSERT INTO ` + epochTable + ` (id, epoch) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET epoch = excluded.epoch`
	if db.Driver == DriverSQLite {
		upsert = `INSERT INTO ` + epochTable + ` (id, epoch) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET epoch = excluded.epoch`
	}
	if _, err := conn.ExecContext(ctx, upsert, int64(db.Epoch)); err != nil {
		kind, note := classify(ctx, db, err)
		return fmt.Errorf("database %s: recording the leader's epoch: %s%s; no migration was run: %w", db, redactIn(err.Error(), db.DSN), note, kind)
	}
	return nil
}
