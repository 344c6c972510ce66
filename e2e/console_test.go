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
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/cutover-dev/cutover/e2e/localcluster"
	"github.com/cutover-dev/cutover/pkg/poll"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// chromium returns the path of a Chromium to drive. Without one the test
// is skipped, except under CI (CI set), where it fails: .ci/run installs
// Debian's chromium.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("CI is set but no chromium is installed: .ci/run installs it (apt-get install -y chromium)")
	}
	t.Skip("no chromium installed (apt-get install -y chromium); CI runs this test")
	return ""
}

// screenshotDir is where the console tests write their screenshots:
// $CUTOVER_SCREENSHOTS, or a new directory under the system's temporary
// directory that is kept after the test, for a person to look at.
func screenshotDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("CUTOVER_SCREENSHOTS")
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "cutover-console-screenshots-"); err != nil {
			t.Fatal(err)
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", dir)
	return dir
}

// browser is one headless Chromium (its own profile, so its own cookies)
// on the console at base.
type browser struct {
	t     *testing.T
	ctx   context.Context
	base  string
	shots string
	name  string
}

// newBrowser starts a headless Chromium. It trusts any certificate: the
// console serves the test controller's own CA, which this throwaway
// profile does not know; only this test browser is told to ignore it.
func newBrowser(t *testing.T, name, base, shots string) *browser {
	t.Helper()
	opts := append(slices.Clone(chromedp.DefaultExecAllocatorOptions[:]),
		chromedp.ExecPath(chromium(t)),
		chromedp.Flag("ignore-certificate-errors", true),
		chromedp.WindowSize(1280, 900),
	)
	if os.Geteuid() == 0 { // CI runs as root, where Chromium's sandbox cannot start
		opts = append(opts, chromedp.NoSandbox)
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// The first run starts the browser: without a deadline, which would
	// stop the whole browser when it passes.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", chromium(t), err)
	}
	b := &browser{t: t, ctx: ctx, base: base, shots: shots, name: name}
	b.run("viewport", chromedp.EmulateViewport(1280, 900))
	return b
}

// run runs steps with a deadline, failing the test on an error.
func (b *browser) run(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := b.try(30*time.Second, steps...); err != nil {
		b.t.Fatalf("%s browser: %s: %v", b.name, what, err)
	}
}

// try runs steps with a deadline and returns their error.
func (b *browser) try(d time.Duration, steps ...chromedp.Action[chromedp.Void]) error {
	ctx, cancel := context.WithTimeout(b.ctx, d)
	defer cancel()
	return chromedp.Do(ctx, steps...)
}

// get runs one action that returns a value, with a deadline.
func get[T any](b *browser, d time.Duration, a chromedp.Action[T]) (T, error) {
	ctx, cancel := context.WithTimeout(b.ctx, d)
	defer cancel()
	return chromedp.Run(ctx, a)
}

// open navigates to path and waits until the page's main is there.
func (b *browser) open(path string) {
	b.t.Helper()
	b.run("open "+path, chromedp.Navigate(b.base+path), chromedp.WaitReady(chromedp.CSS("main")))
}

// login logs in with token on the login page.
func (b *browser) login(token string) {
	b.t.Helper()
	b.open("/login")
	b.run("log in", chromedp.SendKeys(chromedp.CSS("#token"), token), chromedp.Click(chromedp.CSS("#login")),
		chromedp.WaitVisible(chromedp.CSS("#who")))
}

// click presses the button sel and waits until the page it leads to has
// loaded: the old page is marked first, so that it is not taken for the new.
func (b *browser) click(sel string) {
	b.t.Helper()
	b.run("click "+sel, chromedp.Evaluate[chromedp.Void](`window.cutoverTestOldPage = true; undefined`), chromedp.Click(chromedp.CSS(sel)))
	b.waitJS(30*time.Second, "the page after "+sel, `window.cutoverTestOldPage === undefined && document.readyState === 'complete'`)
}

// waitJS polls js (a boolean expression) until it is true.
func (b *browser) waitJS(deadline time.Duration, what, js string) {
	b.t.Helper()
	if err := b.until(deadline, js); err != nil {
		b.t.Fatalf("%s browser: %s: %v", b.name, what, err)
	}
}

// until polls js (a boolean expression, or a promise of one) until it is
// true, or deadline passes.
func (b *browser) until(deadline time.Duration, js string) error {
	return poll.Until(context.Background(), deadline, func() error {
		ok, err := get(b, 5*time.Second, chromedp.Evaluate[bool](js, chromedp.EvalAwaitPromise))
		if err != nil {
			return err // a page that reloads meanwhile: try again
		}
		if !ok {
			return fmt.Errorf("not yet: %s", js)
		}
		return nil
	})
}

// exists says whether the page has an element matching sel.
func (b *browser) exists(sel string) bool {
	b.t.Helper()
	ok, err := get(b, 5*time.Second, chromedp.Evaluate[bool](fmt.Sprintf("document.querySelector(%q) !== null", sel)))
	if err != nil {
		b.t.Fatalf("%s browser: query %s: %v", b.name, sel, err)
	}
	return ok
}

// text returns the text of the first element matching sel, its spaces
// folded.
func (b *browser) text(sel string) string {
	b.t.Helper()
	s, err := get(b, 10*time.Second, chromedp.Evaluate[string](fmt.Sprintf("document.querySelector(%q)?.innerText ?? ''", sel)))
	if err != nil {
		b.t.Fatalf("%s browser: text of %s: %v", b.name, sel, err)
	}
	return strings.Join(strings.Fields(s), " ")
}

// screenshot writes the whole page as NAME.png at 1280 px wide, and as
// NAME-390.png at a phone's 390 px.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	if err := b.shot(name); err != nil {
		b.t.Fatalf("%s browser: screenshot %s: %v", b.name, name, err)
	}
}

// shot is screenshot, returning its error.
func (b *browser) shot(name string) error {
	defer func() { _ = b.try(5*time.Second, chromedp.EmulateViewport(1280, 900)) }()
	for _, w := range []struct {
		suffix        string
		width, height int64
	}{{"", 1280, 900}, {"-390", 390, 844}} {
		if err := b.try(10*time.Second, chromedp.EmulateViewport(w.width, w.height)); err != nil {
			return err
		}
		// The page is laid out at this width: the window has it, and a
		// frame has been drawn since.
		if err := b.until(5*time.Second, fmt.Sprintf(`new Promise(done => requestAnimationFrame(() =>
			requestAnimationFrame(() => done(window.innerWidth === %d))))`, w.width)); err != nil {
			return fmt.Errorf("viewport %d px: %w", w.width, err)
		}
		// Readable at this width: the page does not scroll sideways (wide
		// tables scroll inside their own region).
		if sw, err := get(b, 5*time.Second, chromedp.Evaluate[int64](`document.documentElement.scrollWidth`)); err != nil {
			return err
		} else if sw > w.width {
			b.t.Errorf("%s at %d px: the page is %d px wide", name, w.width, sw)
		}
		// The accessible basics: every visible control has a name (a
		// label, text, or aria-label).
		unnamed, err := get(b, 5*time.Second, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll(
			'input:not([type=hidden]), select, textarea, button, a[href]')).filter(e =>
			!(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.textContent.trim()).map(e => e.outerHTML)`))
		if err != nil {
			return err
		}
		for _, e := range unnamed {
			b.t.Errorf("%s: a control without a label or text: %s", name, e)
		}
		b.axe(name + w.suffix)
		png, err := get(b, 20*time.Second, chromedp.FullScreenshot(100)) // 100: PNG (less is JPEG)
		if err != nil {
			return err
		}
		path := filepath.Join(b.shots, name+w.suffix+".png")
		if err := os.WriteFile(path, png, 0o644); err != nil {
			return err
		}
		b.t.Logf("screenshot %s", path)
	}
	return nil
}

// axeSource returns axe-core's axe.min.js, read from $CUTOVER_AXE_JS (the
// file, or the directory npm installed it into: .ci/run runs
// `npm install --prefix DIR axe-core@VERSION`). Nothing is fetched at run
// time. Unset, the accessibility check is skipped, except under CI (CI
// set), where it fails.
func axeSource(t *testing.T) string {
	t.Helper()
	path := os.Getenv("CUTOVER_AXE_JS")
	if path == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("CI is set but CUTOVER_AXE_JS is not: .ci/run installs axe-core and sets it")
		}
		t.Skip("CUTOVER_AXE_JS is not set (npm install --prefix DIR axe-core; CUTOVER_AXE_JS=DIR/node_modules/axe-core/axe.min.js); CI runs this check")
	}
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		for _, p := range []string{filepath.Join(path, "node_modules", "axe-core", "axe.min.js"), filepath.Join(path, "axe.min.js")} {
			if _, err := os.Stat(p); err == nil {
				path = p
				break
			}
		}
	}
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("CUTOVER_AXE_JS: %v", err)
	}
	return string(src)
}

// axeRun runs axe-core over the page with the WCAG 2 A and AA rules and
// returns the violations of impact serious or critical (missing labels,
// contrast, …), one line each, with the elements they concern.
const axeRun = `;(async () => {
  const r = await axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa']}, resultTypes: ['violations']});
  const line = v => v.id + ' (' + v.impact + '): ' + v.help + ' [' + v.nodes.map(n => n.target.join(' ') +
    (n.failureSummary ? ': ' + n.failureSummary.replace(/\s+/g, ' ') : '')).join('; ') + ']';
  const bad = v => v.impact === 'serious' || v.impact === 'critical';
  return {Version: axe.version, Passed: r.passes.length, Failed: r.violations.filter(bad).map(line),
    Minor: r.violations.filter(v => !bad(v)).map(line)};
})()`

// axe checks the page's accessible basics with axe-core, as the subtest
// a11y/NAME: axe is injected into the page (through DevTools, which the
// console's Content-Security-Policy does not govern) and run there.
func (b *browser) axe(name string) {
	b.t.Helper()
	b.t.Run("a11y/"+name, func(t *testing.T) {
		src := axeSource(t)
		r, err := get(b, 30*time.Second, chromedp.Evaluate[struct {
			Version       string
			Passed        int
			Failed, Minor []string
		}](src+axeRun, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("axe-core on %s: %v", name, err)
		}
		t.Logf("axe-core %s on %s: %d rules pass, %d serious or critical violations, %d minor or moderate", r.Version, name, r.Passed, len(r.Failed), len(r.Minor))
		for _, v := range r.Failed {
			t.Errorf("%s: %s", name, v)
		}
		for _, v := range r.Minor {
			t.Logf("%s (not failing the test): %s", name, v)
		}
	})
}

// session returns the browser's session cookie and the page's CSRF token
// (the logout form's), for hand-made requests. It checks the cookie's
// attributes on the way.
func (b *browser) session() (cookie, csrf string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{b.base + "/"}})
	if err != nil {
		b.t.Fatalf("%s browser: cookies: %v", b.name, err)
	}
	for _, c := range res.Cookies {
		if c.Name == "__Host-cutover-session" {
			if !c.HTTPOnly || !c.Secure || c.SameSite != network.CookieSameSiteStrict || c.Session {
				b.t.Errorf("session cookie: HttpOnly %v, Secure %v, SameSite %s, session-only %v; want HttpOnly, Secure, Strict, expiring",
					c.HTTPOnly, c.Secure, c.SameSite, c.Session)
			}
			cookie = c.Value
		}
	}
	if cookie == "" {
		b.t.Fatalf("%s browser: no session cookie among %d cookies", b.name, len(res.Cookies))
	}
	if csrf, err = get(b, 5*time.Second, chromedp.Value(chromedp.CSS(`form[action="/logout"] input[name="csrf"]`))); err != nil {
		b.t.Fatalf("%s browser: csrf: %v", b.name, err)
	}
	return cookie, csrf
}

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
	chromium(t) // skip (or fail under CI) before starting anything
	port, err := localcluster.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	consoleAddr := fmt.Sprintf("127.0.0.1:%d", port)
	base := "https://" + consoleAddr
	c := newCluster(t, "--console-listen", consoleAddr)
	ctx := context.Background()
	shots := screenshotDir(t)
	src := filepath.Join(c.dir, "src")
	copyApp(t, src, "v1")
	c.createEnv("demo", true)
	c.startAgents("demo", "fe-1", "fe-2", "fe-3")
	app := c.registerApp(src)

	t.Log("v1 runs, deployed through the API")
	d1 := c.createDeployment("demo", app, "v1")
	if _, err := c.Admin.StartDeployment(ctx, &cutoverv1.StartDeploymentRequest{Id: d1}); err != nil {
		t.Fatal(err)
	}
	c.waitDeployment(d1, deployed)
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
	chromium(t)
	port, err := localcluster.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	consoleAddr := fmt.Sprintf("127.0.0.1:%d", port)
	base := "https://" + consoleAddr
	c := newCluster(t, "--console-listen", consoleAddr)
	ctx := context.Background()
	shots := screenshotDir(t)
	src := filepath.Join(c.dir, "src")
	copyApp(t, src, "v1")
	c.createEnv("demo", true)
	c.startAgents("demo", "fe-1", "fe-2")
	app := c.registerApp(src)

	t.Log("v1 runs; v2 is PREPARED; the window is closed")
	d1 := c.createDeployment("demo", app, "v1")
	if _, err := c.Admin.StartDeployment(ctx, &cutoverv1.StartDeploymentRequest{Id: d1}); err != nil {
		t.Fatal(err)
	}
	c.waitDeployment(d1, deployed)
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
