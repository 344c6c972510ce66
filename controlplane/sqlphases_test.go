package controlplane

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cutover-dev/cutover/controlplane/migrate/migratetest"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// The SQL phases end to end through the controller: the expand phase
// before the swap, the contract phase after the validate hooks, the down
// files after a failed stage 2, and rollback --with-database.

const (
	sqlV1        = "CREATE TABLE visits (id INTEGER PRIMARY KEY, path TEXT NOT NULL);\nCREATE TABLE legacy (id INTEGER PRIMARY KEY);\nINSERT INTO visits (id, path) VALUES (1, '/a');\n"
	sqlLegacy    = "CREATE TABLE legacy (id INTEGER PRIMARY KEY);\n"
	validateHook = "hooks:\n  validate: [{command: check-schema}]\n"
)

// phaseFiles are v1's migration and v2's: an expand with its down (unless
// irreversible) and a contract with its down.
func phaseFiles(irreversibleExpand bool) map[string]string {
	files := map[string]string{
		"0001_visits.up.sql":       sqlV1,
		"0002_agent.up.sql":        sqlAddAgent,
		"0002_agent.down.sql":      "ALTER TABLE visits DROP COLUMN agent;\n",
		"0003_legacy.contract.sql": "DROP TABLE legacy;\n",
		"0003_legacy.down.sql":     sqlLegacy,
	}
	if irreversibleExpand {
		delete(files, "0002_agent.down.sql")
	}
	return files
}

// schemaProbe answers questions about the schema of a database.
type schemaProbe struct {
	driver, dsn string
}

// column says whether table has column.
func (p schemaProbe) column(t *testing.T, table, column string) bool {
	q := "SELECT count(*) FROM information_schema.columns WHERE table_name = $1 AND column_name = $2"
	if p.driver == migratetest.SQLite {
		q = "SELECT count(*) FROM pragma_table_info($1) WHERE name = $2"
	}
	return p.count(t, q, table, column) > 0
}

// table says whether table exists.
func (p schemaProbe) table(t *testing.T, table string) bool {
	q := "SELECT count(*) FROM information_schema.tables WHERE table_name = $1"
	if p.driver == migratetest.SQLite {
		q = "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = $1"
	}
	return p.count(t, q, table) > 0
}

func (p schemaProbe) count(t *testing.T, q string, args ...any) int {
	t.Helper()
	var n int
	if err := migratetest.Connect(t, p.driver, p.dsn).QueryRow(q, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// appendSpec adds extra to the cutover.yaml of application hello.
func appendSpec(t *testing.T, tc *testController, extra string) {
	t.Helper()
	app, err := tc.admin.GetApplication(ctx(t), &cutoverv1.GetApplicationRequest{Name: "hello"})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(app.SourceDir, "cutover.yaml"), os.O_APPEND|os.O_WRONLY, 0)
	if err == nil {
		_, err = f.WriteString(extra)
		err = errorsJoin(err, f.Close())
	}
	if err != nil {
		t.Fatal(err)
	}
}

func errorsJoin(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// phaseSetup prepares a deployment of files on a database where v1's
// migration was applied, with a validate hook.
func phaseSetup(t *testing.T, be sqlBackend, files map[string]string) (*testController, *cutoverv1.Deployment, *fakeAgent, schemaProbe) {
	t.Helper()
	if be.driver == migratetest.Postgres {
		migratetest.RequirePostgres(t)
	}
	dsn := be.fresh(t)
	preApply(t, be.driver, dsn, "0001_visits.up.sql", sqlV1)
	tc := startController(t, t.TempDir())
	d, a := sqlSetup(t, tc, be.driver, dsn, files)
	appendSpec(t, tc, validateHook)
	prepare(t, tc, d.Id, cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED)
	return tc, d, a, schemaProbe{be.driver, dsn}
}

// TestExpandBeforeSwapContractAfter: the validate hook, which runs on the
// new release after the swap, sees the expand applied and the contract not
// yet; once DEPLOYED the contract is applied and recorded.
func TestExpandBeforeSwapContractAfter(t *testing.T) {
	eachDatabase(t, func(t *testing.T, be sqlBackend) {
		tc, d, a, db := phaseSetup(t, be, phaseFiles(false))
		var mu sync.Mutex
		var seen []string
		a.setValidate(func() string {
			mu.Lock()
			defer mu.Unlock()
			seen = append(seen, "agent column "+yes(db.column(t, "visits", "agent"))+", legacy table "+yes(db.table(t, "legacy")))
			return ""
		})
		plan, err := tc.admin.GetDeploymentPlan(ctx(t), &cutoverv1.GetDeploymentPlanRequest{Id: d.Id})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(plan.Script, "ADD COLUMN agent") || strings.Contains(plan.Script, "DROP TABLE legacy") ||
			!strings.Contains(plan.ContractScript, "DROP TABLE legacy") || !strings.Contains(plan.DownScript, "DROP COLUMN agent") ||
			!strings.Contains(plan.ContractDownScript, "CREATE TABLE legacy") || len(plan.Irreversible) != 0 {
			t.Fatalf("plan: expand %q contract %q down %q contract down %q irreversible %v", plan.Script, plan.ContractScript, plan.DownScript, plan.ContractDownScript, plan.Irreversible)
		}
		got := continueTo(t, tc, d.Id, cutoverv1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED)
		mu.Lock()
		if strings.Join(seen, ";") != "agent column yes, legacy table yes" {
			t.Errorf("the validate hook saw %q, want the expand applied and the contract not", seen)
		}
		mu.Unlock()
		if db.table(t, "legacy") || !got.ContractDone || got.ContractPending != 1 {
			t.Errorf("after DEPLOYED: legacy table %v, contract done %v pending %d", db.table(t, "legacy"), got.ContractDone, got.ContractPending)
		}
		mustMention(t, "history", lastEvent(got), "contract phase ran", "0003_legacy.contract.sql")
	})
}

func yes(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// TestFailedValidateUndoesExpand: a validate hook fails after the swap:
// the fleet goes back, then the expand phase is undone: the database is as
// it was before stage 2 (schema and rows), and the contract never ran.
func TestFailedValidateUndoesExpand(t *testing.T) {
	eachDatabase(t, func(t *testing.T, be sqlBackend) {
		tc, d, a, db := phaseSetup(t, be, phaseFiles(false))
		before := migratetest.Snapshot(t, db.driver, db.dsn)
		a.setFailHooks("validate", true)
		got := continueTo(t, tc, d.Id, cutoverv1.DeploymentState_DEPLOYMENT_STATE_ROLLED_BACK)
		if after := migratetest.Snapshot(t, db.driver, db.dsn); after != before {
			t.Errorf("database after the rollback:\n%s\nbefore stage 2:\n%s", after, before)
		}
		mustMention(t, "error", got.Error, "expand phase was undone", "0002_agent.down.sql")
		if len(got.SchemaUndone) != 1 || got.SchemaUndone[0] != "expand" || got.ContractDone {
			t.Errorf("schema_undone %v, contract_done %v", got.SchemaUndone, got.ContractDone)
		}
		if r := a.runningRelease("hello"); r == got.Applications[0].ReleaseId || got.Agents[0].State != cutoverv1.AgentDeploymentState_AGENT_DEPLOYMENT_STATE_ROLLED_BACK {
			t.Errorf("the agent runs %q (the new release is %s), its state %s", r, got.Applications[0].ReleaseId, got.Agents[0].State)
		}
	})
}

// TestFailedValidateKeepsIrreversibleExpand: the same with an expand
// without a down file: the fleet goes back, the schema stays, and the
// error says so, naming the migration.
func TestFailedValidateKeepsIrreversibleExpand(t *testing.T) {
	eachDatabase(t, func(t *testing.T, be sqlBackend) {
		tc, d, a, db := phaseSetup(t, be, phaseFiles(true))
		a.setFailHooks("validate", true)
		got := continueTo(t, tc, d.Id, cutoverv1.DeploymentState_DEPLOYMENT_STATE_ROLLED_BACK)
		if !db.column(t, "visits", "agent") || !db.table(t, "legacy") {
			t.Errorf("want the expand applied and the contract not: agent column %v, legacy %v", db.column(t, "visits", "agent"), db.table(t, "legacy"))
		}
		mustMention(t, "error", got.Error, "NOT rolled back", "0002_agent.up.sql", "no down file")
		mustMention(t, "database_outcome", got.DatabaseOutcome, "0002_agent.up.sql")
	})
}

// TestContractFailureResumes: the contract phase fails in its second
// group, on the rows (the shadow had none): the deployment says what
// committed and what did not, waits, and continue resumes it.
func TestContractFailureResumes(t *testing.T) {
	eachDatabase(t, func(t *testing.T, be sqlBackend) {
		files := phaseFiles(false)
		files["0004_mark.contract.sql"] = "-- cutover:no-transaction\nCREATE TABLE marks (id INTEGER);\n"
		files["0005_unique.contract.sql"] = "CREATE UNIQUE INDEX visits_path ON visits (path);\n"
		tc, d, _, db := phaseSetup(t, be, files)
		pool := migratetest.Connect(t, db.driver, db.dsn)
		if _, err := pool.Exec("INSERT INTO visits (id, path) VALUES (2, '/a')"); err != nil {
			t.Fatal(err)
		}
		if _, err := tc.admin.ContinueDeployment(ctx(t), &cutoverv1.ContinueDeploymentRequest{Id: d.Id}); err != nil {
			t.Fatal(err)
		}
		got := waitFor(t, tc, d.Id, "the contract phase stopped", func(d *cutoverv1.Deployment) bool { return d.ContractError != "" || d.State.Final() })
		if got.State != cutoverv1.DeploymentState_DEPLOYMENT_STATE_ACTIVATING || got.Step != "contract" {
			t.Fatalf("after a failed contract: %s step %q: %s", got.State, got.Step, got.Error)
		}
		mustMention(t, "contract_error", got.ContractError, "committed: hello:0003_legacy.contract.sql, hello:0004_mark.contract.sql",
			"not committed: hello:0005_unique.contract.sql", "deploy continue "+d.Id)
		if _, err := pool.Exec("DELETE FROM visits WHERE id = 2"); err != nil {
			t.Fatal(err)
		}
		if _, err := tc.admin.ContinueDeployment(ctx(t), &cutoverv1.ContinueDeploymentRequest{Id: d.Id}); err != nil {
			t.Fatal(err)
		}
		got = waitFor(t, tc, d.Id, "DEPLOYED", isFinalOr(cutoverv1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED))
		if got.State != cutoverv1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED || !got.ContractDone {
			t.Fatalf("after continue again: %s: %s", got.State, got.Error)
		}
		mustMention(t, "history", lastEvent(got), "0005_unique.contract.sql applied", "applied by an earlier run")
		if n := db.count(t, "SELECT count(*) FROM cutover_schema_migrations WHERE name LIKE '%.contract.sql'"); n != 3 {
			t.Errorf("%d contract rows recorded, want 3", n)
		}
	})
}

// wantCode fails unless err has code c and mentions parts.
func wantCode(t *testing.T, err error, c codes.Code, parts ...string) {
	t.Helper()
	if status.Code(err) != c {
		t.Fatalf("err = %v, want %s", err, c)
	}
	mustMention(t, "error", err.Error(), parts...)
}
