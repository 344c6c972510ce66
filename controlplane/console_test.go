package controlplane

import (
	"bufio"
	"context"
	"crypto/tls"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// consoleClient returns an HTTPS client of the console that trusts the
// controller's CA (and presents no certificate), with a cookie jar, and
// that does not follow redirects.
func consoleClient(t *testing.T, tc *testController) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: 10 * time.Second,
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{RootCAs: tc.ca, MinVersion: tls.VersionTLS13}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// TestConsoleServed: with ConsoleListen the console is served over TLS with
// the controller's certificate; a login opens a session; a revoked token
// ends it at once; an open event stream does not hold up the stop.
func TestConsoleServed(t *testing.T) {
	tc := startControllerWith(t, t.TempDir(), func(cfg *Config) { cfg.ConsoleListen = "127.0.0.1:0" })
	base := "https://" + tc.ctl.ConsoleAddr().String()
	d := setup(t, tc, "demo", true, "app", "true")
	res, err := tc.admin.CreateToken(ctx(t), &cutoverv1.CreateTokenRequest{Subject: "vic", Role: cutoverv1.Role_ROLE_VIEWER})
	if err != nil {
		t.Fatal(err)
	}
	client := consoleClient(t, tc)
	resp, err := client.PostForm(base+"/login", url.Values{"token": {res.GetToken()}, "next": {"/deployments/" + d.GetId()}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/deployments/"+d.GetId() {
		t.Fatalf("login: %s to %q", resp.Status, resp.Header.Get("Location"))
	}
	if resp.TLS == nil || resp.TLS.PeerCertificates[0].SerialNumber.Cmp(tc.ctl.pki.ServingCert().SerialNumber) != 0 {
		t.Errorf("the console is not served with the controller's serving certificate")
	}

	// The event stream of the deployment sends it at once.
	sctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(sctx, http.MethodGet, base+"/deployments/"+d.GetId()+"/events", nil)
	stream, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Body.Close()
	if ct := stream.Header.Get("Content-Type"); stream.StatusCode != http.StatusOK || ct != "text/event-stream" {
		t.Fatalf("events: %s %s", stream.Status, ct)
	}
	line, err := bufio.NewReader(stream.Body).ReadString('\n')
	if err != nil || line != "event: deployment\n" {
		t.Fatalf("first line of the stream: %q (%v)", line, err)
	}

	// Revoking the token ends the session.
	if _, err := tc.admin.RevokeToken(ctx(t), &cutoverv1.RevokeTokenRequest{Id: res.GetInfo().GetId()}); err != nil {
		t.Fatal(err)
	}
	resp, err = client.Get(base + "/deployments")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		t.Errorf("a page with the session of a revoked token: %s, want a refusal", resp.Status)
	}

	// The stop ends the open stream instead of waiting for it.
	start := time.Now()
	tc.stop(t)
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("stop took %s with an event stream open", took)
	}
	if _, err := bufio.NewReader(stream.Body).ReadString('\n'); err == nil || strings.Contains(err.Error(), "timeout") {
		t.Errorf("the event stream is still open after the stop: %v", err)
	}
}

// Without ConsoleListen no console is served.
func TestConsoleOff(t *testing.T) {
	tc := startController(t, t.TempDir())
	if tc.ctl.ConsoleAddr() != nil {
		t.Errorf("ConsoleAddr = %v without ConsoleListen", tc.ctl.ConsoleAddr())
	}
}

// TestConsoleLoginRateLimit: after 10 failed logins from one address
// within a minute, the next login from it is refused 429 with Retry-After,
// even with a valid token, and the refusal is audited.
func TestConsoleLoginRateLimit(t *testing.T) {
	tc := startControllerWith(t, t.TempDir(), func(cfg *Config) { cfg.ConsoleListen = "127.0.0.1:0" })
	base := "https://" + tc.ctl.ConsoleAddr().String()
	res, err := tc.admin.CreateToken(ctx(t), &cutoverv1.CreateTokenRequest{Subject: "vic", Role: cutoverv1.Role_ROLE_VIEWER})
	if err != nil {
		t.Fatal(err)
	}
	client := consoleClient(t, tc)
	login := func(token string) *http.Response {
		t.Helper()
		resp, err := client.PostForm(base+"/login", url.Values{"token": {token}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	for i := range 10 {
		if resp := login("wrong-" + strings.Repeat("x", i)); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("failed login %d: %s, want 401", i+1, resp.Status)
		}
	}
	resp := login(res.GetToken())
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Errorf("login after 10 failures: %s, Retry-After %q; want 429 with Retry-After", resp.Status, resp.Header.Get("Retry-After"))
	}
	events, err := tc.admin.ListAuditEvents(ctx(t), &cutoverv1.ListAuditEventsRequest{Subject: "anonymous"})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(events.GetEvents()); n != 11 || events.GetEvents()[n-1].GetCode() != "RESOURCE_EXHAUSTED" || events.GetEvents()[n-1].GetMethod() != "console/Login" {
		t.Errorf("audit of the logins: %v, want 10 refusals then RESOURCE_EXHAUSTED", events.GetEvents())
	}
}
