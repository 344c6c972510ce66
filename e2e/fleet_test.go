package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// lastPrepared is the message of d's latest PREPARED transition.
func lastPrepared(d *cutoverv1.Deployment) string {
	msg := ""
	for _, h := range d.GetHistory() {
		if h.GetState() == prepared && strings.HasPrefix(h.GetMessage(), "PREPARED on ") {
			msg = h.GetMessage()
		}
	}
	return msg
}

// deploymentAgent returns the agent name of d, or nil.
func deploymentAgent(d *cutoverv1.Deployment, name string) *cutoverv1.DeploymentAgent {
	for _, a := range d.GetAgents() {
		if a.GetName() == name {
			return a
		}
	}
	return nil
}

// checkPrediction prints the prediction of d's stage 2 beside its actual
// duration and fails unless predicted ÷ actual is within 0.5–2.
func checkPrediction(t *testing.T, d *cutoverv1.Deployment) {
	t.Helper()
	p := d.GetStage2Prediction()
	if p == nil || d.GetActivateTime() == nil || d.GetFinishTime() == nil {
		t.Errorf("deployment %s: no prediction (%v) or no stage 2 times", d.GetId(), p)
		return
	}
	actual := d.GetFinishTime().AsTime().Sub(d.GetActivateTime().AsTime())
	predicted := p.GetTotal().AsDuration()
	var parts []string
	for _, part := range p.GetParts() {
		parts = append(parts, fmt.Sprintf("%s %s", part.GetName(), part.GetDuration().AsDuration()))
	}
	ratio := predicted.Seconds() / actual.Seconds()
	t.Logf("deployment %s: measured arm %s, hooks %s, sql %s, swap %s", d.GetId(), d.GetArmDuration().AsDuration(), d.GetHooksDuration().AsDuration(), d.GetSqlDuration().AsDuration(), d.GetSwapDuration().AsDuration())
	t.Logf("deployment %s: stage 2 predicted %s (%s), actual %s: predicted/actual %.2f", d.GetId(), predicted, strings.Join(parts, " + "), actual.Round(time.Millisecond), ratio)
	if ratio < 0.5 || ratio > 2 {
		t.Errorf("deployment %s: predicted/actual stage 2 = %.2f (%s / %s), want within 0.5–2", d.GetId(), ratio, predicted, actual)
	}
}

// continueBack continues deployment id and waits until its stage 2 failed
// before anything changed and left it PREPARED again; it returns the
// deployment and the failure (its last history entry).
func (c *cluster) continueBack(id string) (*cutoverv1.Deployment, string) {
	c.t.Helper()
	ctx := context.Background()
	before, err := c.Admin.GetDeployment(ctx, &cutoverv1.GetDeploymentRequest{Id: id})
	if err != nil {
		c.t.Fatal(err)
	}
	if _, err := c.Admin.ContinueDeployment(ctx, &cutoverv1.ContinueDeploymentRequest{Id: id}); err != nil {
		c.t.Fatalf("ContinueDeployment(%s): %v", id, err)
	}
	var dep *cutoverv1.Deployment
	c.waitFor(deployDeadline, "deployment "+id+" PREPARED again", func() error {
		var err error
		if dep, err = c.Admin.GetDeployment(ctx, &cutoverv1.GetDeploymentRequest{Id: id}); err != nil {
			return err
		}
		if dep.GetState() == prepared && len(dep.GetHistory()) >= len(before.GetHistory())+2 {
			return nil
		}
		if st := dep.GetState(); st != prepared && st != cutoverv1.DeploymentState_DEPLOYMENT_STATE_ACTIVATING {
			c.t.Fatalf("deployment %s is %s, want PREPARED again: %s", id, st, dep.GetError())
		}
		return fmt.Errorf("still %s", dep.GetState())
	})
	if dep.GetError() != "" || dep.GetActivateTime() != nil {
		c.t.Errorf("deployment %s PREPARED again with error %q, activate_time %v", id, dep.GetError(), dep.GetActivateTime())
	}
	last := dep.GetHistory()[len(dep.GetHistory())-1].GetMessage()
	mentionsAll(c.t, "the failure", last, "PREPARED again", "continue again")
	return dep, last
}

// TestEveryFrontEndEveryTime: a front-end offline during prepare is named
// by PREPARED; when it connects it is staged in the background, before
// continue (its bytes move before activate_time), so that continue with
// --require-prepared finds nothing to stage. A front-end gone for good
// blocks continue until `agent remove`, which a connected one refuses;
// removed, it leaves agent list and the readiness check. Each stage 2
// after the first is predicted within 0.5–2 of what it took.
//
// Not parallel: it measures stage 2, which the other tests' load would
// slow down after the history was recorded.
func TestEveryFrontEndEveryTime(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	src := filepath.Join(c.dir, "src")
	copyApp(t, src, "v1")
	// A validate hook that takes half a second on each front-end, as a
	// smoke test does: stage 2 then lasts long enough for its prediction
	// to be about the work, not about the noise of a loaded machine.
	spec, err := os.ReadFile(filepath.Join(src, "cutover.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "cutover.yaml"), append(spec, "hooks:\n  validate: [{command: 'sleep 0.5'}]\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	c.createEnv("demo", true)
	c.startAgents("demo", "fe-1", "fe-2", "fe-3")
	c.registerApp(src)
	fe3 := c.Agents[2]

	t.Log("v1: gives the environment its first stage 2, to predict by")
	d1 := c.createDeployment("demo", "hello", "v1")
	c.prepareAndWait(d1)
	first := c.continueAndWait(d1, deployed)
	t.Logf("deployment %s (first, no history): measured arm %s, sql %s, swap %s, stage 2 %s", d1, first.GetArmDuration().AsDuration(), first.GetSqlDuration().AsDuration(),
		first.GetSwapDuration().AsDuration(), first.GetFinishTime().AsTime().Sub(first.GetActivateTime().AsTime()))

	t.Log("v2 prepared while fe-3 is offline")
	fe3.Proc.Stop()
	c.waitDisconnected("fe-3")
	writeVersion(t, src, "v2")
	d2 := c.createDeployment("demo", "hello", "v2")
	dep := c.prepareAndWait(d2)
	mentionsAll(t, "the PREPARED transition", lastPrepared(dep), "PREPARED on 2 of 3 front-ends", "fe-3 not connected since")
	code, out, errOut := c.ctl("deploy", "get", d2)
	if code != 0 || !strings.Contains(out, "PREDICTION") || !strings.Contains(out, "swap") {
		t.Errorf("deploy get %s: exit %d, no PREDICTION with its parts:\n%s%s", d2, code, out, errOut)
	}

	t.Log("fe-3 connects: staged in the background")
	if err := c.StartAgent(ctx, fe3, "demo"); err != nil {
		t.Fatal(err)
	}
	var staged *cutoverv1.DeploymentAgent
	c.waitFor(deployDeadline, "fe-3 staged in the background", func() error {
		d, err := c.Admin.GetDeployment(ctx, &cutoverv1.GetDeploymentRequest{Id: d2})
		if err != nil {
			return err
		}
		staged = deploymentAgent(d, "fe-3")
		if staged.GetState() != cutoverv1.AgentDeploymentState_AGENT_DEPLOYMENT_STATE_STAGED {
			return fmt.Errorf("fe-3 is %s", staged.GetState())
		}
		dep = d
		return nil
	})
	if dep.GetState() != prepared || staged.GetTransferredBytes() <= 0 {
		t.Fatalf("after the staging in the background: %s, fe-3 transferred %d bytes", dep.GetState(), staged.GetTransferredBytes())
	}
	mentionsAll(t, "the history", dep.GetHistory()[len(dep.GetHistory())-1].GetMessage(), "front-end fe-3 staged in the background", "PREPARED on 3 of 3 front-ends")

	t.Log("continue --require-prepared: nothing left to stage inside the window")
	if code, out, errOut := c.ctl("deploy", "continue", d2, "--require-prepared"); code != 0 {
		t.Fatalf("deploy continue --require-prepared: exit %d\n%s%s", code, out, errOut)
	}
	dep = c.waitDeployment(d2, deployed)
	if a := deploymentAgent(dep, "fe-3"); a.GetTransferredBytes() != staged.GetTransferredBytes() {
		t.Errorf("fe-3 transferred %d bytes in all, %d before continue: bytes moved inside the window", a.GetTransferredBytes(), staged.GetTransferredBytes())
	}
	var stagedAt time.Time
	for _, h := range dep.GetHistory() {
		if strings.Contains(h.GetMessage(), "front-end fe-3 staged in the background") {
			stagedAt = h.GetTime().AsTime()
		}
	}
	if stagedAt.IsZero() || !stagedAt.Before(dep.GetActivateTime().AsTime()) {
		t.Errorf("fe-3 staged at %v, activate_time %v: want its staging before stage 2", stagedAt, dep.GetActivateTime().AsTime())
	}
	checkPrediction(t, dep)

	t.Log("agent remove: refused while connected; fe-3 gone for good blocks continue until removed")
	if code, _, errOut := c.ctl("agent", "remove", "fe-3", "--environment", "demo"); code == 0 || !strings.Contains(errOut, codes.FailedPrecondition.String()) {
		t.Errorf("agent remove of a connected agent: exit %d, %s", code, errOut)
	}
	writeVersion(t, src, "v3")
	d3 := c.createDeployment("demo", "hello", "v3")
	c.prepareAndWait(d3)
	fe3.Proc.Stop()
	c.waitFor(30*time.Second, "continue refused naming fe-3", func() error {
		_, err := c.Admin.ContinueDeployment(ctx, &cutoverv1.ContinueDeploymentRequest{Id: d3})
		if err == nil || !strings.Contains(err.Error(), "agent fe-3 is not connected") {
			return fmt.Errorf("continue = %v", err)
		}
		return nil
	})
	if code, out, errOut := c.ctl("agent", "remove", "fe-3", "--environment", "demo"); code != 0 {
		t.Fatalf("agent remove fe-3: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, _ := c.ctl("agents", "list", "--env", "demo"); code != 0 || strings.Contains(out, "fe-3") || !strings.Contains(out, "fe-2") {
		t.Errorf("agents list after the removal: exit %d\n%s", code, out)
	}
	dep = c.continueAndWait(d3, deployed)
	if len(dep.GetAgents()) != 2 {
		t.Errorf("deployment %s ran on %d agents, want 2 (fe-3 removed)", d3, len(dep.GetAgents()))
	}
	checkPrediction(t, dep)
}

// TestContinueAgainAfterDatabaseDown: continue with the database
// unreachable (its directory moved away) changes nothing and leaves the
// deployment PREPARED, the failure in its history; with the database back,
// continue again deploys it.
func TestContinueAgainAfterDatabaseDown(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	src := filepath.Join(c.dir, "src")
	copyApp(t, src, "v1")
	dbDir := filepath.Join(c.dir, "db")
	if err := os.MkdirAll(dbDir, 0o755); err != nil {
		t.Fatal(err)
	}
	c.createEnvWithDB("demo", true, &cutoverv1.Database{Driver: "sqlite", Dsn: filepath.Join(dbDir, "demo.db")})
	c.startAgents("demo", "fe-1", "fe-2")
	c.registerApp(src)
	addMigration(t, src, "0900_retry.up.sql", "CREATE TABLE retry_marker (id INTEGER PRIMARY KEY);")
	d := c.createDeployment("demo", "hello", "v1")
	before := c.prepareAndWait(d)

	away := dbDir + ".away"
	if err := os.Rename(dbDir, away); err != nil {
		t.Fatal(err)
	}
	dep, last := c.continueBack(d)
	mentionsAll(t, "the failure", last, "the SQL script failed", "the database is as it was")
	checkNoSwap(t, dep)
	if !dep.GetPreparedTime().AsTime().Equal(before.GetPreparedTime().AsTime()) || !dep.GetExpireTime().AsTime().Equal(before.GetExpireTime().AsTime()) {
		t.Errorf("PREPARED again with prepared_time %v expire_time %v, want %v %v as before", dep.GetPreparedTime(), dep.GetExpireTime(), before.GetPreparedTime(), before.GetExpireTime())
	}

	if err := os.Rename(away, dbDir); err != nil {
		t.Fatal(err)
	}
	c.continueAndWait(d, deployed)
	c.checkAnswers("v1")
}
