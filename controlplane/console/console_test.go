package console

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/controlplane/auth"
	"github.com/cutover-dev/cutover/controlplane/deployment"
	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/pkg/errkind"
)

// Every POST but the login is CSRF-checked, every route but the login's
// has an action, and the routes' actions are those of the AdminService
// methods that do the same (controlplane/guard/rules.go).
func TestRoutes(t *testing.T) {
	want := map[string]auth.Action{
		"ListEnvironments": auth.Read, "ListDeployments": auth.Read, "GetDeployment": auth.Read, "WatchDeployment": auth.Read,
		"ListAgents": auth.Read, "ListAuditEvents": auth.Read,
		"CreateDeployment": auth.Deploy, "PrepareDeployment": auth.Deploy, "StartDeployment": auth.Deploy,
		"ContinueDeployment": auth.Deploy, "AbortDeployment": auth.Deploy, "ApproveDeployment": auth.Approve,
		"CancelScheduledContinue": auth.Deploy, "ExtendDeployment": auth.Deploy, "RollbackDeployment": auth.Deploy,
		"UpdateEnvironment": auth.Administer,
	}
	for _, rt := range routes {
		post := strings.HasPrefix(rt.pattern, "POST ")
		switch {
		case rt.name == "Login" || rt.name == "LoginPage":
			if rt.action != 0 {
				t.Errorf("%s: the login is open", rt.name)
			}
		case rt.action == 0:
			t.Errorf("%s has no action", rt.name)
		case post && !rt.mutating && !rt.csrf:
			t.Errorf("%s is a POST without a CSRF check", rt.name)
		case !post && (rt.mutating || rt.csrf):
			t.Errorf("%s changes state on a GET", rt.name)
		case (rt.page == nil) == (rt.act == nil):
			t.Errorf("%s needs one of page and act", rt.name)
		case rt.target == nil:
			t.Errorf("%s has no target", rt.name)
		}
		if a, ok := want[rt.name]; ok && a != rt.action {
			t.Errorf("%s checks %s, want %s (as the guard does)", rt.name, rt.action, a)
		}
	}
	_ = actionsByName() // panics on a duplicate name
}

func TestLocalPath(t *testing.T) {
	for in, want := range map[string]string{
		"/deployments/d-1": "/deployments/d-1", "": "/", "https://evil.example/": "/", "//evil.example/x": "/",
		"/\\evil.example": "/", "javascript:alert(1)": "/", "/audit?environment=demo": "/audit?environment=demo",
	} {
		if got := localPath(in); got != want {
			t.Errorf("localPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFormat(t *testing.T) {
	for d, want := range map[time.Duration]string{
		850 * time.Millisecond: "850ms", 12340 * time.Millisecond: "12.3s", 250 * time.Second: "4m10s",
		95*time.Hour + 59*time.Minute + 10*time.Second: "95h59m", 100 * time.Hour: "4d 4h", -2 * time.Second: "-2s",
	} {
		if got := formatDuration(d); got != want {
			t.Errorf("formatDuration(%s) = %q, want %q", d, got, want)
		}
	}
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1536: "1.5 KiB", 20 << 20: "20.0 MiB"} {
		if got := formatBytes(n); got != want {
			t.Errorf("formatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestErrorKinds(t *testing.T) {
	for _, tt := range []struct {
		err    error
		status int
		code   string
	}{
		{nil, http.StatusInternalServerError, "OK"},
		{fmt.Errorf("x: %w", errkind.PermissionDenied), http.StatusForbidden, "PERMISSION_DENIED"},
		{fmt.Errorf("x: %w", errkind.FailedPrecondition), http.StatusConflict, "FAILED_PRECONDITION"},
		{fmt.Errorf("x: %w", errkind.NotFound), http.StatusNotFound, "NOT_FOUND"},
		{fmt.Errorf("plain"), http.StatusInternalServerError, "INTERNAL"},
		{errTooManyLogins, http.StatusTooManyRequests, "RESOURCE_EXHAUSTED"},
		{fmt.Errorf("session ended: %w", errkind.Unauthenticated), http.StatusUnauthorized, "UNAUTHENTICATED"},
	} {
		if tt.err != nil && statusOf(tt.err) != tt.status {
			t.Errorf("statusOf(%v) = %d, want %d", tt.err, statusOf(tt.err), tt.status)
		}
		if codeName(tt.err) != tt.code {
			t.Errorf("codeName(%v) = %s, want %s", tt.err, codeName(tt.err), tt.code)
		}
	}
}

// The pages parse, the login page renders, and every answer carries the
// security headers; pages need a session.
func TestLoginPageAndHeaders(t *testing.T) {
	c := New(Config{})
	for _, tt := range []struct {
		path, wantLocation string
		want               int
	}{
		{"/login?next=" + url.QueryEscape("//evil.example"), "", http.StatusOK},
		{"/deployments", "/login?next=%2Fdeployments", http.StatusSeeOther},
		{"/static/console.js", "", http.StatusOK},
	} {
		rec := httptest.NewRecorder()
		c.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "https://console.test"+tt.path, nil))
		if rec.Code != tt.want || rec.Header().Get("Location") != tt.wantLocation {
			t.Errorf("GET %s: %d to %q, want %d to %q", tt.path, rec.Code, rec.Header().Get("Location"), tt.want, tt.wantLocation)
		}
		if got := rec.Header().Get("Content-Security-Policy"); got != ContentSecurityPolicy {
			t.Errorf("GET %s: CSP %q", tt.path, got)
		}
		if tt.path[1:6] == "login" {
			body := rec.Body.String()
			if !strings.Contains(body, `<label for="token">`) || strings.Contains(body, "evil.example") || strings.Contains(body, "<script>") {
				t.Errorf("login page:\n%s", body)
			}
		}
	}
}

// A session lasts its TTL, and its CSRF token is checked exactly.
func TestSessions(t *testing.T) {
	now := time.Unix(1000, 0)
	ss := newSessions(time.Hour, func() time.Time { return now })
	se := ss.open("tok", auth.Subject{Name: "dora", Role: auth.Deployer})
	if ss.get(se.id) != se {
		t.Fatal("a new session is not found")
	}
	ck := se.cookie(now)
	if !ck.HttpOnly || !ck.Secure || ck.SameSite != http.SameSiteStrictMode || !ck.Expires.Equal(now.Add(time.Hour)) || ck.MaxAge != 3600 || strings.Contains(ck.Value, "tok") {
		t.Errorf("cookie %+v", ck)
	}
	for form, want := range map[string]bool{"csrf=" + se.csrf: true, "": false, "csrf=" + se.csrf + "x": false, "csrf=": false} {
		r := httptest.NewRequest(http.MethodPost, "/x", strings.NewReader(form))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if got := se.checkCSRF(r); got != want {
			t.Errorf("checkCSRF(%q) = %v, want %v", form, got, want)
		}
	}
	now = now.Add(time.Hour)
	if ss.get(se.id) != nil {
		t.Error("an expired session is still found")
	}
}

// A continue form's choices are those of ContinueDeployment: force with
// its reason, or at_window; the reason counts only with force.
func TestContinueOptions(t *testing.T) {
	for form, want := range map[string]deployment.ContinueOptions{
		"":                                   {},
		"at_window=on":                       {AtWindow: true},
		"force=on&reason=+db+is+down+":       {Force: true, ForceReason: "db is down"},
		"force=on":                           {Force: true},
		"reason=abort+reason&at_window=true": {AtWindow: true},
		"force=off":                          {},
	} {
		r := httptest.NewRequest(http.MethodPost, "/deployments/d-1/continue", strings.NewReader(form))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if got := continueOptions(r); got != want {
			t.Errorf("continueOptions(%q) = %+v, want %+v", form, got, want)
		}
	}
}

// The buttons a deployment's page shows: those of its state that the
// subject's role allows.
func TestButtons(t *testing.T) {
	c := &Console{actions: actionsByName()}
	now := time.Date(2030, 1, 7, 12, 0, 0, 0, time.UTC) // a Monday
	deployer := auth.Subject{Name: "dora", Role: auth.Deployer, Environment: "demo"}
	viewer := auth.Subject{Name: "vic", Role: auth.Viewer}
	open := &model.Environment{Name: "demo", TwoStage: true}
	closed := &model.Environment{Name: "demo", TwoStage: true, Windows: []string{"Mon-Sun 02:00-03:00 UTC"}}
	prepared := &model.Deployment{ID: "d-1", Environment: "demo", State: model.Prepared, ExpireTime: now.Add(96 * time.Hour)}
	scheduled := *prepared
	scheduled.ScheduledTime = now.Add(14 * time.Hour)
	deployed := &model.Deployment{ID: "d-2", Environment: "demo", State: model.Deployed,
		Applications: []model.DeploymentApplication{{Name: "hello", ReleaseID: "r2", PreviousReleaseID: "r1"}}}
	running := &model.Environment{Name: "demo", DeployedVersions: map[string]model.DeployedVersion{"hello": {ReleaseID: "r2", DeploymentID: "d-2"}}}
	replaced := &model.Environment{Name: "demo", DeployedVersions: map[string]model.DeployedVersion{"hello": {ReleaseID: "r3", DeploymentID: "d-3"}}}
	approver := auth.Subject{Name: "abe", Role: auth.Approver}
	planned := &model.Deployment{ID: "d-4", Environment: "demo", State: model.Planned,
		History: []model.Transition{{State: model.Planned, Actor: "dora"}}}
	single := &model.Environment{Name: "demo"}
	approval := &model.Environment{Name: "demo", TwoStage: true, RequireApproval: true}
	expired := *prepared
	expired.ExpireTime = now
	for _, tt := range []struct {
		name string
		s    auth.Subject
		d    *model.Deployment
		env  *model.Environment
		want buttons
	}{
		{"prepared, window open", deployer, prepared, open, buttons{Continue: true, Extend: true, Abort: true}},
		{"prepared, window closed", deployer, prepared, closed, buttons{Continue: true, Force: true, Schedule: true, Extend: true, Abort: true}},
		{"scheduled", deployer, &scheduled, closed, buttons{Continue: true, Force: true, CancelSchedule: true, Extend: true, Abort: true}},
		{"viewer", viewer, &scheduled, closed, buttons{}},
		{"deployed", deployer, deployed, running, buttons{Rollback: true}},
		{"deployed, replaced since", deployer, deployed, replaced, buttons{}},
		{"deployed, viewer", viewer, deployed, running, buttons{}},
		{"planned, two stages", deployer, planned, open, buttons{Prepare: true, Abort: true}},
		{"planned, one stage", deployer, planned, single, buttons{Start: true, Abort: true}},
		{"planned, approval required, its creator", deployer, planned, approval, buttons{Prepare: true, Abort: true}},
		{"planned, approval required, an approver", approver, planned, approval, buttons{Approve: true}},
		{"prepared, unapproved, window closed", deployer, prepared, &model.Environment{Name: "demo", TwoStage: true, RequireApproval: true,
			Windows: closed.Windows}, buttons{Continue: true, Extend: true, Abort: true}},
		{"prepared, expired", deployer, &expired, open, buttons{Abort: true}},
	} {
		got := c.buttonsFor(tt.s, tt.d, tt.env, now)
		got.ContinueBlocked = ""
		if got != tt.want {
			t.Errorf("%s: %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

// Failed logins are limited per address: the 11th within a minute is
// refused until the oldest failure is a minute old; other addresses are
// not affected, and the memory of addresses stays bounded.
func TestLoginLimiter(t *testing.T) {
	now := time.Unix(1000, 0)
	l := newLoginLimiter(func() time.Time { return now })
	for i := range loginFailures {
		if b, _ := l.blocked("10.0.0.1"); b {
			t.Fatalf("blocked after %d failures", i)
		}
		l.failed("10.0.0.1")
		now = now.Add(time.Second)
	}
	b, wait := l.blocked("10.0.0.1")
	if !b || wait != loginWindow-loginFailures*time.Second {
		t.Errorf("after %d failures in %ds: blocked %v for %s, want blocked for %s", loginFailures, loginFailures, b, wait, loginWindow-loginFailures*time.Second)
	}
	if b, _ := l.blocked("10.0.0.2"); b {
		t.Error("another address is blocked")
	}
	now = now.Add(wait)
	if b, _ := l.blocked("10.0.0.1"); b {
		t.Error("still blocked once the oldest failure is a minute old")
	}
	l.failed("10.0.0.1") // the 11th within the minute that ends now: blocked again
	if b, _ := l.blocked("10.0.0.1"); !b {
		t.Error("not blocked again after one more failure within the window")
	}
	now = now.Add(loginWindow)
	if b, _ := l.blocked("10.0.0.1"); b || len(l.failures) != 0 {
		t.Errorf("a minute without failures: blocked %v, %d addresses remembered", b, len(l.failures))
	}
	for i := range loginClients + 5 {
		l.failed(fmt.Sprintf("10.1.%d.%d", i/256, i%256))
	}
	if len(l.failures) > loginClients {
		t.Errorf("%d addresses remembered, want at most %d", len(l.failures), loginClients)
	}
	for addr, want := range map[string]string{"192.0.2.1:5555": "192.0.2.1", "[2001:db8::1]:443": "2001:db8::1", "pipe": "pipe"} {
		if got := clientAddr(&http.Request{RemoteAddr: addr}); got != want {
			t.Errorf("clientAddr(%q) = %q, want %q", addr, got, want)
		}
	}
}
