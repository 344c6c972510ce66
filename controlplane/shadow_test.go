package controlplane

import (
	"testing"

	"github.com/cutover-dev/cutover/controlplane/migrate/migratetest"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// TestSQLShadowFailsPrepare: a migration that fails on the schema (here, a
// missing table) fails prepare, found on a shadow database: the deployment
// is FAILED with the file, the statement and its line, no agent was asked
// to stage, and the environment's database is unchanged.
func TestSQLShadowFailsPrepare(t *testing.T) {
	eachDatabase(t, func(t *testing.T, be sqlBackend) {
		tc := startController(t, t.TempDir())
		dsn := be.fresh(t)
		preApply(t, be.driver, dsn, "0001_visits.up.sql", sqlCreateVisits+"INSERT INTO visits (id, path) VALUES (1, '/');\n")
		before := migratetest.Snapshot(t, be.driver, dsn)
		d, agent := sqlSetup(t, tc, be.driver, dsn, map[string]string{
			"0001_visits.up.sql": sqlCreateVisits + "INSERT INTO visits (id, path) VALUES (1, '/');\n",
			"0002_broken.up.sql": sqlBroken, "0003_agent.up.sql": sqlAddAgent,
		})
		dep := prepare(t, tc, d.Id, cutoverv1.DeploymentState_DEPLOYMENT_STATE_FAILED)
		mustMention(t, "the error", dep.Error, "shadow database", "0002_broken.up.sql", "statement 2 (line 2)",
			"INSERT INTO no_such_table", "no_such_table", "was not changed", "nothing was sent to the agents")
		if got := agent.received(); len(got) != 0 {
			t.Errorf("the agent received %v", got)
		}
		if after := migratetest.Snapshot(t, be.driver, dsn); after != before {
			t.Errorf("prepare changed the environment's database:\nbefore:\n%s\nafter:\n%s", before, after)
		}
	})
}

// TestSQLShadowTimesInPlan: a plan checked on the shadow shows the time of
// each group there.
func TestSQLShadowTimesInPlan(t *testing.T) {
	eachDatabase(t, func(t *testing.T, be sqlBackend) {
		tc := startController(t, t.TempDir())
		dsn := be.fresh(t)
		d, _ := sqlSetup(t, tc, be.driver, dsn, map[string]string{"0001_visits.up.sql": sqlCreateVisits, "0002_index.up.sql": sqlIndex})
		prepare(t, tc, d.Id, cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED)
		plan, err := tc.admin.GetDeploymentPlan(ctx(t), &cutoverv1.GetDeploymentPlanRequest{Id: d.Id})
		if err != nil {
			t.Fatal(err)
		}
		if plan.GetShadow() == "" || len(plan.GetGroups()) != 1 || plan.GetGroups()[0].GetShadowDuration().AsDuration() <= 0 {
			t.Errorf("plan: shadow %q, groups %v", plan.GetShadow(), plan.GetGroups())
		}
		t.Logf("shadow: %s; %s", plan.GetShadow(), plan.GetShadowDuration().AsDuration())
	})
}
