package e2e

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// checkCount fails the test unless the demo's output text holds want
// count times.
func checkCount(t *testing.T, text, want string, count int) {
	t.Helper()
	if got := strings.Count(text, want); got != count {
		t.Errorf("demo output holds %q %d times, want %d:\n%s", want, got, count, text)
	}
}

// TestDemo runs cutover-demo as make demo does, so that the demo keeps
// working: it must exit 0 having seen the window open, v1 everywhere, v1
// still after prepare with the SQL script and the expiry shown and the
// table visits not created yet, v2 everywhere after continue, with the
// table created, the hooks run around the swap, the package downloaded and
// the SQL and swap timings printed, and v1 again after the rollback, v1's
// hooks run around it. On the trust side: the CA and the bootstrap token
// shown, a call without a token refused, the deployer's and viewer's tokens
// created and shown by id only, a join token per agent and the agents'
// identities, the viewer's continue refused with PERMISSION_DENIED, and the
// audit trail shown (or said to be unavailable in this build).
func TestDemo(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*deployDeadline)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, bin("cutover-demo"), "-bin", binDir, "-app", filepath.Join("..", "examples", "hello"))
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("cutover-demo: %v\n%s", err, out.String())
	}
	text := out.String()
	if m := regexp.MustCompile(`During the (continue|rollback): \d+ requests answered \(.*\), (\d+) failed`).FindAllStringSubmatch(text, -1); len(m) != 2 || m[0][2] != "0" || m[1][2] != "0" {
		t.Errorf("the demo's traffic during the continue and the rollback: %v; want 0 failed in both\n%s", m, text)
	}
	for _, want := range []struct {
		text  string
		count int
	}{
		{" answers v1\n", 9},
		{"WINDOW-OPEN       yes, until ", 1},
		{"NEXT-WINDOW       ", 1},
		{"is PREPARED and expires at ", 1},
		{"$ cutoverctl deploy rollback d-2 --wait\n", 1},
		{"note: the database is NOT rolled back", 1},
		{"The first and the last front-end switched ", 1},
		{" (overlap)\n", 3},
		{" failed.\n", 2}, // the traffic during the continue and the rollback; none may fail (below)
		{" answers v2\n", 3},
		{"$ cutoverctl deploy prepare d-2 --wait\n", 1},
		{"$ cutoverctl deploy continue d-2 --wait\n", 1},
		{"$ cutoverctl deploy plan d-2\n", 1},
		{"CREATE TABLE visits (", 1},
		{" has no table visits yet (its tables: none)", 1},
		{" now has the table visits (its tables: cutover_schema_migrations, visits)", 2}, // after continue, and after the rollback
		{"Stage 2 (activate_time to finish_time) took ", 1},
		{" (sql_duration), swap ", 1},
		{"Done: every process stopped", 1},
		// hooks around the swap of continue (before_activate in what runs
		// then, v1), and around the rollback's (v1's hooks; before_activate in v2)
		{"  before_activate  ran in the v1 release", 1},
		{"  validate         ran in the v2 release", 3},
		{"  after_activate   ran in the v2 release", 1},
		{"  before_activate  ran in the v2 release", 1},
		{"  validate         ran in the v1 release", 3},
		{"  after_activate   ran in the v1 release", 1},
		// the package step's output, downloaded
		{"$ cutoverctl deploy package d-2 -o ", 1},
		{"holds: hello v2, packaged for the mobile app", 1},
		// trust
		{"/controller/tls/ca.crt\n", 1},
		{"/data/tls/agent.pem (mode 600)", 3},
		{"/controller/bootstrap.token\n", 2}, // its mode, and the export
		{"$ env -u CUTOVER_TOKEN_FILE cutoverctl env list\n", 1},
		{"error: Unauthenticated: ", 1},
		{"$ cutoverctl token create --subject demo-deployer --role deployer --environment demo ", 1},
		{"$ cutoverctl token create --subject demo-viewer --role viewer ", 1},
		{"$ cutoverctl agent token create --environment demo --name fe-", 3},
		{"cutoverjoin.", 3},
		{"cutover://demo/agent/fe-", 6}, // agents list, once enrolled and once v2 is staged
		{"--join-token-file ", 1},
		{"$ export CUTOVER_TOKEN_FILE=", 1},
		{"viewer.token cutoverctl deploy continue d-2\n", 1},
		{"error: PermissionDenied: demo-viewer has role viewer", 1},
		{"     DEPLOYMENT_STATE_PREPARED\n", 1},
		{"PLANNED  demo-deployer  created", 2},
		{"$ cutoverctl token revoke ", 1},
	} {
		checkCount(t, text, want.text, want.count)
	}
	// ca.key and bootstrap.token are shown 0600 (ca.crt is 0644). A line of
	// its own: a release id ending in 600 before a column's padding is no
	// file mode.
	if got := len(regexp.MustCompile(`(?m)^\s*600  \S+/controller/(tls/ca\.key|bootstrap\.token)$`).FindAllString(text, -1)); got != 2 {
		t.Errorf("demo output shows ca.key and bootstrap.token with mode 600 %d times, want 2:\n%s", got, text)
	}
	// No secret on screen: tokens appear by their id only.
	for _, secret := range regexp.MustCompile(`cutover(join)?\.[0-9a-f]{16}\.[A-Za-z0-9_-]{43}`).FindAllString(text, -1) {
		t.Errorf("the demo printed a whole token: %s", secret)
	}
	// The audit trail of the deployment, the viewer's refusal in it, and the
	// chain verified.
	for _, want := range []string{"cutoverctl audit list --deployment d-2\n", "cutoverctl audit verify\n", "PERMISSION_DENIED", "audit log verified: "} {
		if !strings.Contains(text, want) {
			t.Errorf("demo output lacks the audit trail's %q:\n%s", want, text)
		}
	}
}
