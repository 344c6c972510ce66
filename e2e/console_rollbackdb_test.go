package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/cutover-dev/cutover/controlplane/migrate/migratetest"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// TestConsoleRollbackWithDatabase presses, in a real headless Chromium,
// the Roll back form of a deployment that changed the schema (issue 17):
// it offers to roll the database back too and, since a contract migration
// is irreversible, names it and offers force. With the database but not
// forced, the rollback is refused naming the migration, and nothing
// changes; forced with a reason, the front-ends answer v1 again, the
// expand is undone, the irreversible contract stays, and the audit entry
// holds the choices and the reason. The form goes through the same domain
// call as RollbackDeployment.
func TestConsoleRollbackWithDatabase(t *testing.T) {
	t.Parallel()
	c, base, src, app := newConsoleCluster(t, "fe-1")
	ctx := context.Background()
	db := sqlDatabase{migratetest.SQLite, filepath.Join(c.dir, "demo.db")}
	column := func() bool {
		t.Helper()
		pool := migratetest.Connect(t, db.driver, db.dsn)
		var n int
		if err := pool.QueryRow("SELECT count(*) FROM pragma_table_info('visits') WHERE name = 'agent'").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n > 0
	}
	writeVersion(t, src, "v2")
	addMigration(t, src, "0002_agent.up.sql", "ALTER TABLE visits ADD COLUMN agent TEXT;\n")
	addMigration(t, src, "0002_agent.down.sql", "ALTER TABLE visits DROP COLUMN agent;\n")
	addMigration(t, src, "0003_purge.contract.sql", "-- cutover:irreversible\nDELETE FROM visits WHERE path = '/old';\n")
	d2 := c.createDeployment("demo", app, "v2")
	c.prepareAndWait(d2)
	c.continueAndWait(d2, deployed)
	c.checkAnswers("v2")
	tok, err := c.Token(ctx, "dora", cutoverv1.Role_ROLE_DEPLOYER, "demo")
	if err != nil {
		t.Fatal(err)
	}
	dep := newBrowser(t, "deployer", base, screenshotDir(t))
	dep.login(tok)
	dep.open("/deployments/" + d2)
	if !dep.exists("#rollback-with-database") || !dep.exists("#rollback-force") {
		t.Fatalf("the Roll back form of a deployment with an irreversible migration lacks with-database (%v) or force (%v)",
			dep.exists("#rollback-with-database"), dep.exists("#rollback-force"))
	}
	mentionsAll(t, "the irreversible note", dep.text("#rollback-irreversible"), "0003_purge.contract.sql", "refused unless forced")
	mentionsAll(t, "the plan's contract phase", dep.text("#sql-contract"), "0003_purge.contract.sql", "DELETE FROM visits")
	dep.screenshot("11-deployment-rollback-database")

	t.Log("with the database, not forced: refused, naming the migration; nothing changes")
	before := db.snapshot(t)
	dep.run("reason and with the database", chromedp.SendKeys(chromedp.CSS("#rollback-reason"), "v2 breaks the login"),
		chromedp.Click(chromedp.CSS("#rollback-with-database")))
	dep.click("#rollback")
	mentionsAll(t, "the refusal", dep.text("#error"), "0003_purge.contract.sql", "nothing was changed", "--force --reason")
	if got := c.waitDeployment(d2, deployed); got.GetError() != "" {
		t.Errorf("a refused rollback left an error: %s", got.GetError())
	}
	if after := db.snapshot(t); after != before {
		t.Errorf("a refused rollback changed the database:\n%s\nbefore:\n%s", after, before)
	}

	t.Log("with the database, forced with a reason: v1 again, the expand undone, the irreversible contract kept")
	dep.open("/deployments/" + d2)
	dep.run("reason, with the database, force", chromedp.SendKeys(chromedp.CSS("#rollback-reason"), "v2 breaks the login"),
		chromedp.Click(chromedp.CSS("#rollback-with-database")), chromedp.Click(chromedp.CSS("#rollback-force")))
	dep.click("#rollback")
	c.waitFor(deployDeadline, "ROLLED_BACK", func() error { // DEPLOYED is final too: wait for this one
		d, err := c.Admin.GetDeployment(ctx, &cutoverv1.GetDeploymentRequest{Id: d2})
		if err == nil && d.GetState() != rolledBack {
			err = fmt.Errorf("still %s: %s", d.GetState(), d.GetError())
		}
		return err
	})
	c.checkAnswers("v1")
	if column() {
		t.Errorf("the forced rollback with the database left the expand's column visits.agent")
	}
	got, err := c.Admin.GetDeployment(ctx, &cutoverv1.GetDeploymentRequest{Id: d2})
	if err != nil {
		t.Fatal(err)
	}
	mentionsAll(t, "database_outcome", got.GetDatabaseOutcome(), "forced", "0003_purge.contract.sql")
	events, err := c.Admin.ListAuditEvents(ctx, &cutoverv1.ListAuditEventsRequest{Deployment: d2, Subject: "dora"})
	if err != nil || !slices.ContainsFunc(events.GetEvents(), func(e *cutoverv1.AuditEvent) bool {
		return e.GetMethod() == "console/RollbackDeployment" && e.GetCode() == "OK" && e.GetReason() == "v2 breaks the login" &&
			strings.Contains(e.GetSummary(), `"force":"on"`) && strings.Contains(e.GetSummary(), `"with_database":"on"`)
	}) {
		t.Errorf("audit of the forced rollback with the database: %v (%v)", events.GetEvents(), err)
	}
}
