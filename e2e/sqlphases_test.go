package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cutover-dev/cutover/controlplane/migrate/migratetest"
	"github.com/cutover-dev/cutover/internal/localcluster"
)

// checkSchema is v2's validate hook (python3, standard library): it logs
// what it sees of the schema and fails unless the expand phase (the column
// visits.agent) is applied and the contract phase (which drops the table
// legacy) is not yet.
const checkSchema = `import sqlite3, sys
db, log = sys.argv[1], sys.argv[2]
conn = sqlite3.connect(db)
cols = [r[1] for r in conn.execute("PRAGMA table_info(visits)")]
tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
conn.close()
seen = "expand %s, contract %s" % ("applied" if "agent" in cols else "missing", "applied" if "legacy" not in tables else "not applied")
with open(log, "a") as f:
    f.write(seen + "\n")
if "agent" not in cols or "legacy" not in tables:
    sys.exit("the schema is wrong for this release: " + seen)
`

// phasesApp is examples/listen (the Go app, no build step) with
// migrations in db/ and, from v2 on, checkSchema as its validate hook.
type phasesApp struct {
	t                 *testing.T
	src, spec         string
	db, hookLog       string
	name, healthLimit string
}

func newPhasesApp(t *testing.T, c *cluster, db string) *phasesApp {
	t.Helper()
	a := &phasesApp{t: t, src: filepath.Join(c.dir, "src-web"), db: db, hookLog: filepath.Join(c.dir, "hook.log"), name: "web"}
	if err := (localcluster.ListenApp{Name: a.name, Binary: bin("listen"), Listen: true}).Write(a.src, "v1"); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(a.src, "cutover.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// A release that never turns healthy is rolled back after 3 s, not 10.
	a.spec = strings.Replace(string(b), "health_timeout: 10s", "health_timeout: 3s", 1) + "migrations: db\n"
	if !strings.Contains(a.spec, "health_timeout: 3s") {
		t.Fatalf("ListenApp's cutover.yaml has no health_timeout of 10s:\n%s", b)
	}
	if err := os.MkdirAll(filepath.Join(a.src, "db"), 0o755); err != nil {
		t.Fatal(err)
	}
	a.files(map[string]string{"check_schema.py": checkSchema})
	return a
}

// files writes files (name → text) into the source, db/ for the .sql ones.
func (a *phasesApp) files(files map[string]string) {
	a.t.Helper()
	for name, body := range files {
		path := filepath.Join(a.src, name)
		if strings.HasSuffix(name, ".sql") {
			path = filepath.Join(a.src, "db", name)
		}
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			a.t.Fatal(err)
		}
	}
}

// set writes the next release's VERSION, cutover.yaml (with the validate
// hook when hook), and whether its health check fails.
func (a *phasesApp) set(version string, hook, unhealthy bool) {
	a.t.Helper()
	spec := a.spec
	if hook {
		spec += fmt.Sprintf("hooks:\n  validate: [{command: 'python3 check_schema.py %s %s'}]\n", a.db, a.hookLog)
	}
	a.files(map[string]string{"cutover.yaml": spec})
	writeVersion(a.t, a.src, version)
	if err := localcluster.SetUnhealthy(a.src, unhealthy); err != nil {
		a.t.Fatal(err)
	}
}

// TestSQLPhases drives issue 17 over the real binaries: one controller,
// two agents, a SQLite database. v2 has an expand migration with its down
// file and a contract one: its validate hook, a python3 script run on each
// front-end after the swap, queries the schema and fails if the contract
// ran already, so v2's DEPLOYED proves expand before the swap and contract
// after. Then v3 adds an expand with a down file (a column and a row), and
// its health check fails: the deployment ends ROLLED_BACK, both front-ends
// run v2 again, and the database's schema and rows are what they were
// before v3's stage 2. Last, cutoverctl deploy rollback --with-database
// of v2 brings the fleet back to v1 and the database to what it was
// before v2's stage 2.
func TestSQLPhases(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	db := sqlDatabase{migratetest.SQLite, filepath.Join(c.dir, "phases.db")}
	c.createEnvWithDB("phases", true, db.proto())
	c.startAgents("phases", "fe-1", "fe-2")
	app := newPhasesApp(t, c, db.dsn)

	t.Log("v1: the tables, one row")
	app.files(map[string]string{"0001_visits.up.sql": "CREATE TABLE visits (id INTEGER PRIMARY KEY, path TEXT NOT NULL);\nCREATE TABLE legacy (id INTEGER PRIMARY KEY);\nINSERT INTO visits (id, path) VALUES (1, '/a');\n"})
	app.set("v1", false, false)
	c.registerApp(app.src)
	c.deployVersion("phases", app.name, "v1", deployed)

	t.Log("v2: expand (with its down) before the swap, contract after the validate hooks")
	app.files(map[string]string{
		"0002_agent.up.sql":        "ALTER TABLE visits ADD COLUMN agent TEXT;\n",
		"0002_agent.down.sql":      "ALTER TABLE visits DROP COLUMN agent;\n",
		"0003_legacy.contract.sql": "DROP TABLE legacy;\n",
		"0003_legacy.down.sql":     "CREATE TABLE legacy (id INTEGER PRIMARY KEY);\n",
	})
	app.set("v2", true, false)
	d2 := c.createDeployment("phases", app.name, "v2")
	c.prepareAndWait(d2)
	beforeV2 := db.snapshot(t)
	code, plan, errOut := c.ctl("deploy", "plan", d2)
	if code != 0 {
		t.Fatalf("deploy plan %s: exit %d\n%s", d2, code, errOut)
	}
	mentionsAll(t, "deploy plan", plan, "phase 1: expand", "ADD COLUMN agent", "phase 2: contract", "DROP TABLE legacy",
		"-- | ALTER TABLE visits DROP COLUMN agent;", "-- | CREATE TABLE legacy")
	dep2 := c.continueAndWait(d2, deployed)
	v2 := releaseOf(t, dep2)
	hookSaw, err := os.ReadFile(app.hookLog)
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.Repeat("expand applied, contract not applied\n", 2); string(hookSaw) != want {
		t.Errorf("the validate hooks saw:\n%swant, on each of the two front-ends:\n%s", hookSaw, want)
	}
	if !dep2.GetContractDone() || slices.Contains(db.tables(t), "legacy") {
		t.Errorf("after v2: contract_done %v, tables %v (want legacy dropped)", dep2.GetContractDone(), db.tables(t))
	}
	c.checkAnswers("v2")
	if t.Failed() {
		t.FailNow()
	}

	t.Log("v3: an expand with its down; the health check fails after the swap")
	app.files(map[string]string{
		"0004_tag.up.sql":   "ALTER TABLE visits ADD COLUMN tag TEXT;\nINSERT INTO visits (id, path, tag) VALUES (2, '/v3', 'new');\n",
		"0004_tag.down.sql": "DELETE FROM visits WHERE id = 2;\nALTER TABLE visits DROP COLUMN tag;\n",
	})
	app.set("v3", false, true)
	d3 := c.createDeployment("phases", app.name, "v3")
	c.prepareAndWait(d3)
	before := db.snapshot(t)
	dep3 := c.continueAndWait(d3, rolledBack)
	if after := db.snapshot(t); after != before {
		t.Errorf("the database after v3's rollback:\n%s\nbefore v3's stage 2:\n%s", after, before)
	}
	mentionsAll(t, "v3's error", dep3.GetError(), "expand phase was undone", "0004_tag.down.sql")
	if got := dep3.GetSchemaUndone(); len(got) != 1 || got[0] != "expand" {
		t.Errorf("schema_undone = %v, want [expand]", got)
	}
	c.checkCurrent(app.name, v2)
	c.checkAnswers("v2")
	if t.Failed() {
		t.FailNow()
	}

	t.Log("cutoverctl deploy rollback v2 --with-database: contract undone, fleet back to v1, expand undone")
	if code, _, errOut := c.ctl("deploy", "rollback", d2, "--force", "--reason", "x"); code == 0 || !strings.Contains(errOut, "--force goes with --with-database") {
		t.Errorf("rollback --force without --with-database: exit %d\n%s", code, errOut)
	}
	if code, out, errOut := c.ctl("deploy", "rollback", d2, "--with-database", "--wait"); code != 0 {
		t.Fatalf("deploy rollback %s --with-database --wait: exit %d\n%s%s", d2, code, out, errOut)
	}
	back := c.waitDeployment(d2, rolledBack)
	if after := db.snapshot(t); after != beforeV2 {
		t.Errorf("the database after rollback --with-database:\n%s\nbefore v2's stage 2:\n%s", after, beforeV2)
	}
	if got := strings.Join(back.GetSchemaUndone(), ","); got != "contract,expand" {
		t.Errorf("schema_undone = %s, want contract,expand", got)
	}
	c.checkAnswers("v1")
}
