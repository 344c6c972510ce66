package controlplane

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/controlplane/migrate/migratetest"
	"github.com/cutover-dev/cutover/pkg/poll"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// slowContract is a contract migration that runs for minutes on a
// database with a visit of path '/slow', and at once on one without (the
// shadow that prepare checks it on).
func slowContract(driver string) string {
	if driver == migratetest.SQLite {
		return "INSERT INTO marks SELECT count(*) FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c " +
			"WHERE x < (SELECT count(*) FROM visits WHERE path = '/slow') * 1000000000) SELECT x FROM c);\n"
	}
	return "SELECT pg_sleep(CASE WHEN EXISTS (SELECT 1 FROM visits WHERE path = '/slow') THEN 120 ELSE 0 END);\n"
}

// TestContractCutShortByARestart: the controller stops while its contract
// phase runs its third group, the first two committed (the controller has
// not recorded them: it records a phase when it ends). The restarted
// controller resumes the phase: the committed groups are not run again
// (each would fail: the table it drops is gone, the one it creates
// exists), the third runs, and the deployment ends DEPLOYED.
func TestContractCutShortByARestart(t *testing.T) {
	eachDatabase(t, func(t *testing.T, be sqlBackend) {
		files := phaseFiles(false)
		files["0004_mark.contract.sql"] = "-- cutover:no-transaction\nCREATE TABLE marks (n INTEGER);\n"
		files["0005_slow.contract.sql"] = slowContract(be.driver)
		tc, d, a, db := phaseSetup(t, be, files)
		pool := migratetest.Connect(t, db.driver, db.dsn)
		if _, err := pool.Exec("INSERT INTO visits (id, path) VALUES (2, '/slow')"); err != nil {
			t.Fatal(err)
		}
		contractRows := "SELECT count(*) FROM cutover_schema_migrations WHERE name LIKE '%.contract.sql'"
		if _, err := tc.admin.ContinueDeployment(ctx(t), &cutoverv1.ContinueDeploymentRequest{Id: d.Id}); err != nil {
			t.Fatal(err)
		}
		// Read with pool, not db.count: a read while the controller commits a
		// group may find SQLite busy; the poll tries again.
		if err := poll.Until(context.Background(), 20*time.Second, func() error {
			var n int
			err := pool.QueryRow(contractRows).Scan(&n)
			if err == nil && n != 2 {
				err = fmt.Errorf("%d contract groups committed, want the first two", n)
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		tc.stop(t) // the third group runs: it is cancelled, its transaction rolled back

		if n := db.count(t, contractRows); n != 2 {
			t.Fatalf("%d contract rows after the stop, want 2: the third group was to be cut short", n)
		}
		if _, err := pool.Exec("DELETE FROM visits WHERE id = 2"); err != nil { // the third group is quick now
			t.Fatal(err)
		}
		tc = startController(t, tc.dataDir)
		a.setAddr(tc.addr)
		got := waitFor(t, tc, d.Id, "DEPLOYED after the restart", isFinalOr(cutoverv1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED))
		if got.State != cutoverv1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED || !got.ContractDone {
			t.Fatalf("after the restart: %s, contract_done %v: %s", got.State, got.ContractDone, got.Error)
		}
		mustMention(t, "history", lastEvent(got), "0005_slow.contract.sql applied",
			"hello:0003_legacy.contract.sql, hello:0004_mark.contract.sql applied by an earlier run")
		if n := db.count(t, contractRows); n != 3 {
			t.Errorf("%d contract rows recorded, want 3", n)
		}
		if n := db.count(t, "SELECT count(*) FROM marks"); be.driver == migratetest.SQLite && n != 1 {
			t.Errorf("marks has %d rows, want the one of the third group's only run", n)
		}
		if db.table(t, "legacy") {
			t.Errorf("the contract's drop of legacy is undone")
		}
	})
}
