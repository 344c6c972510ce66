package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// TestConsoleButtons presses, in a real headless Chromium, the buttons
// LifeTime users know besides Prepare and Continue, and checks each effect
// through the API: outside a window a deployer extends a PREPARED
// deployment, schedules it at the next window, cancels the schedule and
// forces Continue with a reason (recorded in its history and the audit
// log); then rolls the DEPLOYED deployment back (the front-ends answer the
// old version again). An admin turns the environment's two stages off and
// on with the checkbox. A viewer sees none of the deployer's buttons, a
// deployer not the checkbox, and their hand-made POSTs are refused.
func TestConsoleButtons(t *testing.T) {
	t.Parallel()
	t.Log("v1 runs; v2 is PREPARED; the window is closed")
	c, base, src, app := newConsoleCluster(t, "fe-1", "fe-2")
	ctx := context.Background()
	shots := screenshotDir(t)
	writeVersion(t, src, "v2")
	d2 := c.createDeployment("demo", app, "v2")
	if _, err := c.Admin.PrepareDeployment(ctx, &cutoverv1.PrepareDeploymentRequest{Id: d2}); err != nil {
		t.Fatal(err)
	}
	before := c.waitDeployment(d2, prepared)
	win := closedWindow(time.Now())
	if _, err := c.Admin.UpdateEnvironment(ctx, &cutoverv1.UpdateEnvironmentRequest{
		Environment: &cutoverv1.Environment{Name: "demo", Windows: []string{win}},
		UpdateMask:  &fieldmaskpb.FieldMask{Paths: []string{"windows"}}}); err != nil {
		t.Fatal(err)
	}
	token := func(name string, role cutoverv1.Role, env string) string {
		tok, err := c.Token(ctx, name, role, env)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	dep := newBrowser(t, "deployer", base, shots)
	dep.login(token("dora", cutoverv1.Role_ROLE_DEPLOYER, "demo"))
	view := newBrowser(t, "viewer", base, shots)
	view.login(token("vic", cutoverv1.Role_ROLE_VIEWER, "demo"))
	deployerButtons := []string{"#continue", "#force-continue", "#schedule", "#cancel-schedule", "#extend", "#rollback", "#abort"}
	noneFor := func(b *browser, sels ...string) {
		t.Helper()
		for _, sel := range sels {
			if b.exists(sel) {
				t.Errorf("%s browser sees %s", b.name, sel)
			}
		}
	}

	dep.open("/deployments/" + d2)
	for _, sel := range []string{"#force-continue", "#schedule", "#extend"} {
		if !dep.exists(sel) {
			t.Errorf("deployer, PREPARED outside the window: no %s", sel)
		}
	}
	if dep.exists("#cancel-schedule") {
		t.Errorf("deployer: Cancel schedule before anything is scheduled")
	}
	view.open("/deployments/" + d2)
	noneFor(view, deployerButtons...)

	t.Log("Extend by 48h")
	dep.run("by 48h", chromedp.SetValue(chromedp.CSS("#extend-by"), "48h"))
	dep.click("#extend")
	got := c.waitDeployment(d2, prepared)
	if d := got.GetExpireTime().AsTime().Sub(before.GetExpireTime().AsTime()); d != 48*time.Hour {
		t.Errorf("after Extend by 48h, the expiry moved by %s", d)
	}

	t.Log("Schedule at next window, then Cancel schedule")
	dep.click("#schedule")
	got = c.waitDeployment(d2, prepared)
	if got.GetScheduledTime() == nil || got.GetScheduledTime().AsTime().Before(time.Now()) {
		t.Fatalf("after Schedule: scheduled_time %v, want the next window opening", got.GetScheduledTime())
	}
	if !dep.exists("#cancel-schedule") || dep.exists("#schedule") || !strings.Contains(dep.text("#scheduled"), "scheduled") {
		t.Errorf("scheduled page: Cancel schedule %v, Schedule %v, %q", dep.exists("#cancel-schedule"), dep.exists("#schedule"), dep.text("#scheduled"))
	}
	view.open("/deployments/" + d2)
	noneFor(view, deployerButtons...)
	dep.screenshot("7-deployment-scheduled")
	dep.click("#cancel-schedule")
	if got = c.waitDeployment(d2, prepared); got.GetScheduledTime() != nil {
		t.Errorf("after Cancel schedule: scheduled_time %v", got.GetScheduledTime())
	}

	t.Log("Continue now (force) needs a reason")
	if req, err := get(dep, 5*time.Second, chromedp.Evaluate[bool](`document.getElementById('force-reason').required`)); err != nil || !req {
		t.Errorf("the force reason is not required in the form (%v)", err)
	}
	depCookie, depCSRF := dep.session()
	code, body := consolePost(t, c, base, "/deployments/"+d2+"/continue", depCookie, url.Values{"csrf": {depCSRF}, "force": {"on"}})
	if code != http.StatusBadRequest || !strings.Contains(body, "reason") {
		t.Errorf("force without a reason: %d, want 400 asking for a reason; body:\n%s", code, body)
	}
	c.waitDeployment(d2, prepared)
	dep.run("reason", chromedp.SendKeys(chromedp.CSS("#force-reason"), "hotfix for the checkout outage"))
	dep.click("#force-continue")
	got = c.waitDeployment(d2, deployed)
	c.checkAnswers("v2")
	if !slices.ContainsFunc(got.GetHistory(), func(h *cutoverv1.DeploymentTransition) bool {
		return strings.Contains(h.GetMessage(), "forced outside the deployment windows") && strings.Contains(h.GetMessage(), "hotfix for the checkout outage")
	}) {
		t.Errorf("history of the forced continue lacks the reason:\n%s", asJSON(got))
	}
	events, err := c.Admin.ListAuditEvents(ctx, &cutoverv1.ListAuditEventsRequest{Deployment: d2, Subject: "dora"})
	if err != nil || !slices.ContainsFunc(events.GetEvents(), func(e *cutoverv1.AuditEvent) bool {
		return e.GetMethod() == "console/ContinueDeployment" && e.GetCode() == "OK" && e.GetReason() == "hotfix for the checkout outage" &&
			strings.Contains(e.GetSummary(), `"force":"on"`)
	}) {
		t.Errorf("audit of the forced continue (with its reason): %v (%v)", events.GetEvents(), err)
	}
	for _, m := range []string{"console/ExtendDeployment", "console/CancelScheduledContinue"} {
		if !slices.ContainsFunc(events.GetEvents(), func(e *cutoverv1.AuditEvent) bool { return e.GetMethod() == m && e.GetCode() == "OK" }) {
			t.Errorf("no audit entry %s", m)
		}
	}

	t.Log("Roll back (with a reason); the viewer sees no Roll back and is refused")
	dep.waitJS(deployDeadline, "DEPLOYED on the page", `document.querySelector('#state')?.dataset.state === 'DEPLOYED' && document.getElementById('rollback') !== null`)
	view.open("/deployments/" + d2)
	noneFor(view, deployerButtons...)
	viewerCookie, viewerCSRF := view.session()
	if code, _ := consolePost(t, c, base, "/deployments/"+d2+"/rollback", viewerCookie, url.Values{"csrf": {viewerCSRF}, "reason": {"x"}}); code != http.StatusForbidden {
		t.Errorf("viewer's POST rollback: %d, want 403", code)
	}
	c.waitDeployment(d2, deployed)
	dep.screenshot("8-deployment-deployed-rollback")
	dep.run("reason", chromedp.SendKeys(chromedp.CSS("#rollback-reason"), "v2 breaks the login"))
	dep.click("#rollback")
	c.waitFor(deployDeadline, "ROLLED_BACK", func() error { // DEPLOYED is final too: wait for this one
		d, err := c.Admin.GetDeployment(ctx, &cutoverv1.GetDeploymentRequest{Id: d2})
		if err == nil && d.GetState() != cutoverv1.DeploymentState_DEPLOYMENT_STATE_ROLLED_BACK {
			err = fmt.Errorf("still %s", d.GetState())
		}
		return err
	})
	c.checkAnswers("v1")
	dep.waitJS(deployDeadline, "ROLLED_BACK on the page", `document.querySelector('#state')?.dataset.state === 'ROLLED_BACK'`)
	if dep.exists("#rollback") {
		t.Errorf("ROLLED_BACK page still offers Roll back")
	}

	dep.open("/deployments/d-999")
	if !strings.Contains(dep.text("main"), "d-999") {
		t.Errorf("the error page of an unknown deployment: %q", dep.text("main"))
	}
	dep.screenshot("10-error")

	t.Log("an admin turns two stages off and on; a deployer does not see the checkbox and is refused")
	adm := newBrowser(t, "admin", base, shots)
	adm.login(token("ada", cutoverv1.Role_ROLE_ADMIN, ""))
	adm.open("/environments")
	if !adm.exists("#two-stage-demo") {
		t.Fatalf("admin: no two-stage checkbox")
	}
	adm.screenshot("9-environments-admin")
	twoStage := func() bool {
		t.Helper()
		e, err := c.Admin.GetEnvironment(ctx, &cutoverv1.GetEnvironmentRequest{Name: "demo"})
		if err != nil {
			t.Fatal(err)
		}
		return e.GetTwoStage()
	}
	adm.run("untick", chromedp.Click(chromedp.CSS("#two-stage-demo")))
	adm.click("#save-two-stage-demo")
	if twoStage() {
		t.Errorf("after unticking two stages and Save: two_stage is still on")
	}
	if s := adm.text(`[data-environment="demo"] .two-stage-state`); !strings.HasPrefix(s, "Off") {
		t.Errorf("environments page after Save: %q, want Off", s)
	}
	adm.run("tick", chromedp.Click(chromedp.CSS("#two-stage-demo")))
	adm.click("#save-two-stage-demo")
	if !twoStage() {
		t.Errorf("after ticking two stages and Save: two_stage is off")
	}
	for _, b := range []*browser{dep, view} {
		b.open("/environments")
		noneFor(b, "#two-stage-demo", "#save-two-stage-demo")
	}
	depCookie, depCSRF = dep.session()
	if code, _ := consolePost(t, c, base, "/environments/demo/two-stage", depCookie, url.Values{"csrf": {depCSRF}}); code != http.StatusForbidden {
		t.Errorf("deployer's POST two-stage: %d, want 403", code)
	}
	if !twoStage() {
		t.Errorf("the deployer's refused POST turned two stages off")
	}
	events, err = c.Admin.ListAuditEvents(ctx, &cutoverv1.ListAuditEventsRequest{Environment: "demo", Subject: "ada"})
	if err != nil || !slices.ContainsFunc(events.GetEvents(), func(e *cutoverv1.AuditEvent) bool {
		return e.GetMethod() == "console/UpdateEnvironment" && strings.Contains(e.GetSummary(), `"two_stage":"false"`)
	}) {
		t.Errorf("audit of the admin's two-stage off: %v (%v)", events.GetEvents(), err)
	}
}
