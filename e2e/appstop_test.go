package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// TestAppStop: two front-ends run an app with run.listen. A viewer's
// `cutoverctl app stop` is refused (PermissionDenied) and stops nothing; a
// deployer's, on fe-1, stops it there only: fe-1's port refuses connections
// and its current link is gone, fe-2 still answers; the audit log has the
// entry with the reason. An agent restart does not start it again; the
// front-end drifts, and `cutoverctl env reconcile` starts it again.
func TestAppStop(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	ctx := context.Background()
	c.createEnv("demo", true)
	c.startAgents("demo", "fe-1", "fe-2")
	c.newListenApp("web", "v1", appKind{listen: true})
	v1 := releaseOf(t, c.deployVersion("demo", "web", "v1", deployed))
	c.checkAnswers("v1")
	fe1, fe2 := c.Agents[0], c.Agents[1]

	as := func(role cutoverv1.Role, subject string) []string {
		t.Helper()
		tok, err := c.Token(ctx, subject, role, "demo")
		if err != nil {
			t.Fatal(err)
		}
		return []string{"CUTOVER_CONTROLLER=" + c.Addr, "CUTOVER_CA_FILE=" + c.CAFile, "CUTOVER_TOKEN=" + tok, "CUTOVER_TOKEN_FILE="}
	}
	stop := []string{"app", "stop", "web", "--environment", "demo", "--agent", "fe-1", "--reason", "e2e: INC-7 leaks memory"}

	t.Log("a viewer may not stop it")
	code, out, errOut := runCtl(t, stop, as(cutoverv1.Role_ROLE_VIEWER, "vic"))
	if code == 0 || !strings.Contains(errOut, "PermissionDenied") {
		t.Fatalf("app stop as a viewer: exit %d\n%s%s", code, out, errOut)
	}
	c.checkAnswers("v1")
	c.checkCurrent("web", v1)

	t.Log("a deployer stops it on fe-1")
	code, out, errOut = runCtl(t, stop, as(cutoverv1.Role_ROLE_DEPLOYER, "dee"))
	if code != 0 || out != "fe-1\tstopped web\n" {
		t.Fatalf("app stop as a deployer: exit %d\nstdout %q\nstderr %s", code, out, errOut)
	}
	refuses(t, fe1.Port)
	if _, err := os.Lstat(filepath.Join(fe1.Root, "web", "current")); !os.IsNotExist(err) {
		t.Errorf("fe-1's current after the stop: %v, want it gone", err)
	}
	c.waitAnswer(fe2, "v1")

	t.Log("a named agent that is not connected: refused, nothing sent")
	code, _, errOut = c.ctl("app", "stop", "web", "--env", "demo", "--agent", "fe-2", "--agent", "fe-9", "--reason", "x")
	if code == 0 || !strings.Contains(errOut, "FailedPrecondition") || !strings.Contains(errOut, "fe-9") {
		t.Errorf("app stop on fe-9: exit %d\n%s", code, errOut)
	}
	c.waitAnswer(fe2, "v1")

	t.Log("the audit log has the stop, with its reason, and the viewer's refusal")
	var trail cutoverv1.ListAuditEventsResponse
	code, out, errOut = c.ctl("-o", "json", "audit", "list", "--environment", "demo")
	if err := protojson.Unmarshal([]byte(out), &trail); code != 0 || err != nil {
		t.Fatalf("audit list: exit %d, %v\n%s", code, err, errOut)
	}
	var got []string
	for _, e := range trail.GetEvents() {
		if strings.HasSuffix(e.GetMethod(), "/StopApplication") {
			got = append(got, fmt.Sprintf("%s %s %s", e.GetSubject(), e.GetCode(), e.GetReason()))
		}
	}
	for _, want := range []string{"vic PERMISSION_DENIED e2e: INC-7 leaks memory", "dee OK e2e: INC-7 leaks memory"} {
		if !strings.Contains(strings.Join(got, "\n"), want) {
			t.Errorf("the audit log's StopApplication entries lack %q:\n%s", want, strings.Join(got, "\n"))
		}
	}

	t.Log("an agent restart does not start it again; fe-1 drifts")
	if err := c.RestartAgent(ctx, fe1, "demo"); err != nil {
		t.Fatalf("restart agent fe-1: %v", err)
	}
	c.waitDrift(map[string]string{"fe-1": "yes (web: runs nothing, recorded " + v1[:12] + ")", "fe-2": "no"})
	refuses(t, fe1.Port)

	t.Log("env reconcile starts it again")
	code, out, errOut = c.ctl("env", "reconcile", "demo", "--reason", "e2e: start web again", "--wait")
	if code != 0 || !strings.Contains(errOut, "reconciling fe-1 with deployment d-") {
		t.Fatalf("env reconcile: exit %d\n%s\n%s", code, out, errOut)
	}
	c.waitAnswer(fe1, "v1")
	c.checkCurrent("web", v1)
	c.checkAnswers("v1")
	c.waitDrift(map[string]string{"fe-1": "no", "fe-2": "no"})
}

// refuses fails the test unless a connection to 127.0.0.1:port is refused.
func refuses(t *testing.T, port int) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 2*time.Second)
	if err == nil {
		conn.Close()
		t.Errorf("port %d accepts connections, want them refused", port)
	} else if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("connect to port %d: %v, want the connection refused", port, err)
	}
}
