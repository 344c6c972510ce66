package e2e

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/cutover-dev/cutover/internal/localcluster"
	"github.com/cutover-dev/cutover/pkg/poll"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// consolePost posts form to the console with a session cookie, as a
// hand-made request (no browser), trusting the cluster's CA. It returns
// the status and the body.
func consolePost(t *testing.T, c *cluster, base, path, cookie string, form url.Values) (int, string) {
	t.Helper()
	pem, err := os.ReadFile(c.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	client := &http.Client{Timeout: 10 * time.Second,
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, err := http.NewRequest(http.MethodPost, base+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(&http.Cookie{Name: "__Host-cutover-session", Value: cookie})
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// closedWindow returns a deployment window that opens in about six hours
// and lasts one, every day: closed now, whatever the time.
func closedWindow(now time.Time) string {
	start := now.UTC().Add(6 * time.Hour).Truncate(time.Hour)
	return fmt.Sprintf("Mon-Sun %02d:00-%02d:00 UTC", start.Hour(), (start.Hour()+1)%24)
}

// newConsoleCluster starts the binaries with the console on a free port
// (it skips the test first when there is no Chromium), and environment
// demo, two-stage, with agents; v1 of the example application runs there,
// deployed through the API. It returns the cluster, the console's base
// URL, the application's source directory and its name.
func newConsoleCluster(t *testing.T, agents ...string) (c *cluster, base, src, app string) {
	t.Helper()
	chromium(t) // skip (or fail under CI) before starting anything
	port, err := localcluster.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	consoleAddr := fmt.Sprintf("127.0.0.1:%d", port)
	c = newCluster(t, "--console-listen", consoleAddr)
	src = filepath.Join(c.dir, "src")
	copyApp(t, src, "v1")
	c.createEnv("demo", true)
	c.startAgents("demo", agents...)
	app = c.registerApp(src)
	d1 := c.createDeployment("demo", app, "v1")
	if _, err := c.Admin.StartDeployment(context.Background(), &cutoverv1.StartDeploymentRequest{Id: d1}); err != nil {
		t.Fatal(err)
	}
	c.waitDeployment(d1, deployed)
	return c, "https://" + consoleAddr, src, app
}

// TestConsole drives the web console in a real headless Chromium against
// the real binaries and three agents: a deployer plans v2 with the form,
// presses Prepare, watches three progress bars end at 100 % (pushed by
// server-sent events) and the expiry of the PREPARED deployment, presses
// Continue and sees DEPLOYED with the activation spread, and the front-ends
// answer v2. A viewer sees no Continue button, and the viewer's hand-made
// POST is refused 403 and changes nothing; so is a POST without the CSRF
// token. Outside a window, Continue is disabled and says when the next
// window opens; Abort, Approve, Logout and Start are pressed too.
// Screenshots go to screenshotDir.
func TestConsole(t *testing.T) {
	t.Parallel()
	t.Log("v1 runs, deployed through the API")
	c, base, src, app := newConsoleCluster(t, "fe-1", "fe-2", "fe-3")
	ctx := context.Background()
	shots := screenshotDir(t)
	c.checkAnswers("v1")

	deployerToken, err := c.Token(ctx, "dora", cutoverv1.Role_ROLE_DEPLOYER, "demo")
	if err != nil {
		t.Fatal(err)
	}
	viewerToken, err := c.Token(ctx, "vic", cutoverv1.Role_ROLE_VIEWER, "demo")
	if err != nil {
		t.Fatal(err)
	}
	approverToken, err := c.Token(ctx, "abe", cutoverv1.Role_ROLE_APPROVER, "")
	if err != nil {
		t.Fatal(err)
	}

	t.Log("the deployer plans v2 with the form and presses Prepare")
	// A release of some megabytes, so that staging takes a moment to watch.
	writeVersion(t, src, "v2")
	blob := make([]byte, 24<<20)
	_, _ = rand.Read(blob)
	if err := os.WriteFile(filepath.Join(src, "blob.bin"), blob, 0o644); err != nil {
		t.Fatal(err)
	}
	dep := newBrowser(t, "deployer", base, shots)
	dep.open("/login")
	dep.screenshot("0-login")
	dep.login(deployerToken)
	dep.open("/deployments")
	dep.screenshot("0-deployments")
	dep.run("fill the form", chromedp.SetValue(chromedp.CSS("#new-env"), "demo"), chromedp.SetValue(chromedp.CSS("#new-app"), app),
		chromedp.SendKeys(chromedp.CSS("#new-version"), "v2"))
	dep.click("#create")
	dep.waitJS(10*time.Second, "the new deployment's page", `document.querySelector('#state')?.dataset.state === 'PLANNED'`)
	d2, err := get(dep, 5*time.Second, chromedp.Evaluate[string](`document.getElementById('deployment').dataset.id`))
	if err != nil || !strings.HasPrefix(d2, "d-") {
		t.Fatalf("deployment id on the page: %q (%v)", d2, err)
	}
	if dep.exists("#continue") || !dep.exists("#prepare") {
		t.Errorf("PLANNED deployment: want Prepare and no Continue")
	}
	dep.click("#prepare")
	dep.waitJS(10*time.Second, "PREPARING with three bars", `document.querySelectorAll('#agents progress').length === 3`)
	// Stage 1 has begun: the builds, then the transfers.
	if png, err := get(dep, 10*time.Second, chromedp.CaptureScreenshot()); err != nil {
		t.Errorf("screenshot during staging: %v", err)
	} else if err := os.WriteFile(filepath.Join(shots, "1-deployment-staging.png"), png, 0o644); err != nil {
		t.Fatal(err)
	} else {
		t.Logf("screenshot %s", filepath.Join(shots, "1-deployment-staging.png"))
	}
	var seen []string
	err = poll.Until(ctx, deployDeadline, func() error {
		st, err := get(dep, 5*time.Second, chromedp.Evaluate[struct {
			State  string
			Values []float64
		}](`({State: document.getElementById('state').dataset.state,
			Values: Array.from(document.querySelectorAll('#agents progress')).map(p => p.value)})`))
		if err != nil {
			return err
		}
		if o := fmt.Sprint(st.State, st.Values); len(seen) == 0 || seen[len(seen)-1] != o {
			seen = append(seen, o)
			if st.State == "PREPARING" && slices.ContainsFunc(st.Values, func(v float64) bool { return v > 0 && v < 100 }) {
				// A bar caught part way: worth a look too (best effort, it moves on).
				if png, err := get(dep, 5*time.Second, chromedp.CaptureScreenshot()); err == nil {
					_ = os.WriteFile(filepath.Join(shots, "1-deployment-staging-partway.png"), png, 0o644)
				}
			}
		}
		if st.State == "FAILED" {
			return poll.Permanent(fmt.Errorf("stage 1 failed"))
		}
		if st.State != "PREPARED" || len(st.Values) != 3 || slices.ContainsFunc(st.Values, func(v float64) bool { return v != 100 }) {
			return fmt.Errorf("bars %v, state %s", st.Values, st.State)
		}
		return nil
	})
	t.Logf("what the page showed (state, bars): %s", strings.Join(seen, " → "))
	if err != nil {
		t.Fatalf("three bars at 100 %% and PREPARED: %v\n%s", err, asJSON(c.waitSettled(d2, prepared)))
	}
	// The page may reload once more as the last event arrives: look until it settles.
	c.waitFor(10*time.Second, "the PREPARED page's expiry countdown", func() error {
		if got := dep.text("#expiry"); !strings.Contains(got, "expires in") {
			return fmt.Errorf("expiry %q, want a countdown", got)
		}
		if got := dep.text("#agents"); !strings.Contains(got, "100 %") {
			return fmt.Errorf("bars' labels: %q, want 100 %%", got)
		}
		return nil
	})
	dep.screenshot("2-deployment-prepared")
	c.checkAnswers("v1")

	t.Log("the deployer presses Continue")
	dep.click("#continue")
	dep.waitJS(deployDeadline, "DEPLOYED", `document.querySelector('#state')?.dataset.state === 'DEPLOYED' && !document.getElementById('spread').hidden`)
	// The page may reload once more as the last event arrives: look until it settles.
	c.waitFor(10*time.Second, "the DEPLOYED page's activation spread", func() error {
		if s := dep.text("#spread"); !strings.Contains(s, "Activation spread") {
			return fmt.Errorf("spread: %q", s)
		}
		return nil
	})
	dep.screenshot("3-deployment-deployed")
	c.checkAnswers("v2")
	c.waitDeployment(d2, deployed)

	t.Log("v3 prepared through the API; a viewer sees no Continue, and is refused 403")
	writeVersion(t, src, "v3")
	d3 := c.createDeployment("demo", app, "v3")
	if _, err := c.Admin.PrepareDeployment(ctx, &cutoverv1.PrepareDeploymentRequest{Id: d3}); err != nil {
		t.Fatal(err)
	}
	c.waitDeployment(d3, prepared)
	view := newBrowser(t, "viewer", base, shots)
	view.login(viewerToken)
	view.open("/deployments/" + d3)
	if view.text("#state") != "PREPARED" {
		t.Errorf("viewer: state %q, want PREPARED", view.text("#state"))
	}
	for _, sel := range []string{"#continue", "#prepare", "#abort", "#approve", "#create"} {
		if view.exists(sel) {
			t.Errorf("viewer sees %s", sel)
		}
	}
	viewerCookie, viewerCSRF := view.session()
	code, body := consolePost(t, c, base, "/deployments/"+d3+"/continue", viewerCookie, url.Values{"csrf": {viewerCSRF}})
	if code != http.StatusForbidden || !strings.Contains(body, "viewer") {
		t.Errorf("viewer's POST continue: %d, want 403 saying the role; body:\n%s", code, body)
	}
	dep3 := c.waitDeployment(d3, prepared)
	if n := len(dep3.GetHistory()); dep3.GetActivateTime() != nil || dep3.GetHistory()[n-1].GetState() != prepared {
		t.Errorf("the viewer's refused continue changed d3:\n%s", asJSON(dep3))
	}
	events, err := c.Admin.ListAuditEvents(ctx, &cutoverv1.ListAuditEventsRequest{Deployment: d3, Subject: "vic"})
	if err != nil || !slices.ContainsFunc(events.GetEvents(), func(e *cutoverv1.AuditEvent) bool {
		return e.GetMethod() == "console/ContinueDeployment" && e.GetCode() == "PERMISSION_DENIED"
	}) {
		t.Errorf("audit of the viewer's refused continue: %v (%v)", events.GetEvents(), err)
	}

	t.Log("POSTs without the CSRF token, or with a wrong one, are refused")
	depCookie, depCSRF := dep.session()
	for _, form := range []url.Values{{}, {"csrf": {"x" + depCSRF}}} {
		code, body := consolePost(t, c, base, "/deployments/"+d3+"/abort", depCookie, form)
		if code != http.StatusForbidden || !strings.Contains(body, "CSRF") {
			t.Errorf("POST abort with form %v: %d, want 403 about CSRF; body:\n%s", form, code, body)
		}
	}
	code, _ = consolePost(t, c, base, "/deployments/"+d3+"/abort", "", url.Values{"csrf": {depCSRF}})
	if code != http.StatusUnauthorized {
		t.Errorf("POST abort without a session: %d, want 401", code)
	}
	c.waitDeployment(d3, prepared)

	t.Log("outside a window, Continue is disabled and says when the next opens")
	win := closedWindow(time.Now())
	if _, err := c.Admin.UpdateEnvironment(ctx, &cutoverv1.UpdateEnvironmentRequest{
		Environment: &cutoverv1.Environment{Name: "demo", Windows: []string{win}},
		UpdateMask:  &fieldmaskpb.FieldMask{Paths: []string{"windows"}}}); err != nil {
		t.Fatal(err)
	}
	dep.open("/deployments/" + d3)
	if disabled, err := get(dep, 5*time.Second, chromedp.Evaluate[bool](`document.getElementById('continue').disabled`)); err != nil || !disabled {
		t.Errorf("Continue outside the window: disabled %v (%v), want disabled", disabled, err)
	}
	if why := dep.text("#continue-why"); !strings.Contains(why, "next window opens in") || !strings.Contains(why, win) {
		t.Errorf("why Continue is disabled: %q, want when the next window (%s) opens", why, win)
	}
	dep.screenshot("4-deployment-outside-window")
	dep.open("/environments")
	if s := dep.text(`[data-environment="demo"] .windows`); !strings.Contains(s, "Closed") || !strings.Contains(s, "next opening in") {
		t.Errorf("environments page, windows: %q", s)
	}
	dep.screenshot("5-environments")

	t.Log("the deployer aborts v3 with the button")
	dep.open("/deployments/" + d3)
	dep.run("reason", chromedp.SendKeys(chromedp.CSS("#abort-reason"), "wrong build"))
	dep.click("#abort")
	dep.waitJS(10*time.Second, "ABORTED", `document.querySelector('#state')?.dataset.state === 'ABORTED'`)
	c.waitDeployment(d3, cutoverv1.DeploymentState_DEPLOYMENT_STATE_ABORTED)

	t.Log("the viewer logs out; an approver approves v3' (required now), then the deployer starts it in one stage")
	if _, err := c.Admin.UpdateEnvironment(ctx, &cutoverv1.UpdateEnvironmentRequest{
		Environment: &cutoverv1.Environment{Name: "demo", RequireApproval: true},
		UpdateMask:  &fieldmaskpb.FieldMask{Paths: []string{"require_approval", "windows"}}}); err != nil {
		t.Fatal(err)
	}
	depClient := c.as("dora", cutoverv1.Role_ROLE_DEPLOYER, "demo")
	d4, err := depClient.CreateDeployment(ctx, &cutoverv1.CreateDeploymentRequest{Environment: "demo",
		Applications: []*cutoverv1.ApplicationVersion{{Name: app, VersionLabel: "v3"}}})
	if err != nil {
		t.Fatal(err)
	}
	view.click(`form[action="/logout"] button`)
	view.waitJS(5*time.Second, "the login page", `document.getElementById('token') !== null`)
	code, _ = consolePost(t, c, base, "/deployments/"+d4.GetId()+"/abort", viewerCookie, url.Values{"csrf": {viewerCSRF}})
	if code != http.StatusUnauthorized {
		t.Errorf("POST with the cookie of a session that logged out: %d, want 401", code)
	}
	dep.open("/deployments/" + d4.GetId())
	if dep.exists("#approve") {
		t.Errorf("the deployer who created %s sees Approve", d4.GetId())
	}
	view.login(approverToken)
	view.open("/deployments/" + d4.GetId())
	view.run("comment", chromedp.SendKeys(chromedp.CSS("#approve-comment"), "looks right"))
	view.click("#approve")
	if s := view.text("#approval"); !strings.Contains(s, "Approved by abe") || !strings.Contains(s, "looks right") {
		t.Errorf("after Approve: %q", s)
	}
	if _, err := c.Admin.UpdateEnvironment(ctx, &cutoverv1.UpdateEnvironmentRequest{
		Environment: &cutoverv1.Environment{Name: "demo", TwoStage: false},
		UpdateMask:  &fieldmaskpb.FieldMask{Paths: []string{"two_stage"}}}); err != nil {
		t.Fatal(err)
	}
	dep.open("/deployments/" + d4.GetId())
	dep.click("#start")
	dep.waitJS(deployDeadline, "DEPLOYED in one stage", `document.querySelector('#state')?.dataset.state === 'DEPLOYED'`)
	c.checkAnswers("v3")

	t.Log("the audit page shows the console's actions and a verified chain")
	dep.open("/audit?deployment=" + d2)
	if s := dep.text("#chain"); !strings.Contains(s, "verifies") {
		t.Errorf("audit chain status: %q", s)
	}
	dep.screenshot("6-audit")
	for _, m := range []string{"console/CreateDeployment", "console/PrepareDeployment", "console/ContinueDeployment"} {
		if !strings.Contains(dep.text("table.audit"), m) {
			t.Errorf("audit page of %s lacks %s", d2, m)
		}
	}
	dep.open("/frontends")
	for _, a := range c.Agents {
		if !strings.Contains(dep.text("table.list"), a.Name) {
			t.Errorf("front-ends page lacks %s", a.Name)
		}
	}
	dep.screenshot("6-frontends")
}
