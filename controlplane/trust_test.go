package controlplane

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cutover-dev/cutover/pkg/auditlog"
	"github.com/cutover-dev/cutover/pkg/poll"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// The audit log of a two-stage deployment names each step and who took
// it, the refusals included, and its chain verifies.
func TestAuditTrailOfATwoStageDeployment(t *testing.T) {
	tc := startController(t, t.TempDir())
	d := setup(t, tc, "production", true, "hello", "true")
	startFakeAgent(t, tc.addr, "fe1", "production", false)
	waitAgents(t, tc, "production", 1)

	viewer := tc.as(t, "victor", cutoverv1.Role_ROLE_VIEWER)
	if _, err := viewer.ContinueDeployment(ctx(t), continueReq(d.Id)); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("viewer continues: %v, want PermissionDenied", err)
	}
	prepare(t, tc, d.Id, cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED)
	if _, err := tc.admin.ContinueDeployment(ctx(t), continueReq(d.Id)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, tc, d.Id, "DEPLOYED", func(d *cutoverv1.Deployment) bool {
		return d.GetState() == cutoverv1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED
	})

	var events []*cutoverv1.AuditEvent
	err := poll.Until(context.Background(), 10*time.Second, func() error {
		res, err := tc.admin.ListAuditEvents(ctx(t), &cutoverv1.ListAuditEventsRequest{Deployment: d.Id})
		if err != nil {
			return poll.Permanent(err)
		}
		events = res.GetEvents()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range events {
		got = append(got, e.GetSubject()+" "+e.GetMethod()[strings.LastIndex(e.GetMethod(), "/")+1:]+" "+e.GetCode())
	}
	for _, want := range []string{
		"victor ContinueDeployment PERMISSION_DENIED",
		"alice PrepareDeployment OK",
		"alice ContinueDeployment OK",
		"controller deployment PREPARED OK",
		"controller deployment DEPLOYED OK",
	} {
		if !slices.Contains(got, want) {
			t.Errorf("the audit trail lacks %q:\n%s", want, strings.Join(got, "\n"))
		}
	}

	all, err := tc.admin.ListAuditEvents(ctx(t), &cutoverv1.ListAuditEventsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var entries []auditlog.Entry
	for _, e := range all.GetEvents() {
		entries = append(entries, auditlog.Entry{Seq: e.GetSeq(), Time: e.GetTime().AsTime(), Subject: e.GetSubject(), Roles: e.GetRoles(),
			Method: e.GetMethod(), Environment: e.GetEnvironment(), Deployment: e.GetDeployment(), Summary: e.GetSummary(),
			Code: e.GetCode(), Reason: e.GetReason(), PrevHash: e.GetPrevHash(), Hash: e.GetHash()})
	}
	if err := auditlog.Verify(entries); err != nil {
		t.Errorf("the served chain does not verify: %v", err)
	}
	// The agent's Enroll carried a join token: its entry keeps only the id.
	enrolled := false
	for _, e := range entries {
		if strings.HasSuffix(e.Method, "/Enroll") && e.Subject == "agent:production/fe1" && e.Code == "OK" {
			enrolled = strings.Contains(e.Summary, `"join_token_id"`)
		}
		if tokenSecret.MatchString(e.Summary + " " + e.Reason) {
			t.Errorf("entry %d holds a token's secret: %s %s", e.Seq, e.Summary, e.Reason)
		}
	}
	if !enrolled {
		t.Error("the audit log has no entry of the agent's enrollment with its join token's id")
	}
}

// tokenSecret matches an operator or join token with its secret
// (pkg/token's formats).
var tokenSecret = regexp.MustCompile(`cutover(?:join)?\.[0-9a-f]{16}\.[A-Za-z0-9_-]{43}`)
