package controlplane

import (
	"testing"

	"github.com/cutover-dev/cutover/controlplane/migrate/migratetest"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// TestFailedHealthCheckUndoesExpand: v1 runs on two front-ends; v2 has an
// expand with a down file and a contract. In its stage 2 the health check
// of fe2 fails after the swap: the fleet goes back to v1 (fe1, healthy,
// too), then the expand phase is undone: the database ends as it was
// before stage 2 (schema and rows), and the contract never ran.
func TestFailedHealthCheckUndoesExpand(t *testing.T) {
	eachDatabase(t, func(t *testing.T, be sqlBackend) {
		tc, d2, db, _, agents := prepareV1ThenV2(t, be, phaseFiles(false), "fe2")
		v1 := d2.Applications[0].PreviousReleaseId
		if v1 == "" || v1 == d2.Applications[0].ReleaseId {
			t.Fatalf("v2's previous release is %q, its release %s", v1, d2.Applications[0].ReleaseId)
		}
		before := migratetest.Snapshot(t, db.driver, db.dsn)
		agents[1].setFailActivate(true)

		got := continueTo(t, tc, d2.Id, cutoverv1.DeploymentState_DEPLOYMENT_STATE_ROLLED_BACK)
		if after := migratetest.Snapshot(t, db.driver, db.dsn); after != before {
			t.Errorf("database after the rollback:\n%s\nbefore stage 2:\n%s", after, before)
		}
		mustMention(t, "error", got.Error, "health check failed", "expand phase was undone", "0002_agent.down.sql")
		if len(got.SchemaUndone) != 1 || got.SchemaUndone[0] != "expand" || got.ContractDone {
			t.Errorf("schema_undone %v, contract_done %v", got.SchemaUndone, got.ContractDone)
		}
		if !db.table(t, "legacy") || db.column(t, "visits", "agent") {
			t.Errorf("legacy table %v (want kept: the contract never ran), agent column %v (want undone)", db.table(t, "legacy"), db.column(t, "visits", "agent"))
		}
		for _, a := range agents {
			if r := a.runningRelease("hello"); r != v1 {
				t.Errorf("agent %s runs %q after the rollback, want v1's release %s (received %v)", a.name, r, v1, a.received())
			}
		}
		for _, a := range got.Agents {
			if a.State == cutoverv1.AgentDeploymentState_AGENT_DEPLOYMENT_STATE_ACTIVE {
				t.Errorf("agent %s is %s after the rollback", a.Name, a.State)
			}
		}
	})
}
