package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/cutover-dev/cutover/pkg/poll"
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
