package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/cutover-dev/cutover/controlplane/store"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// TestTrustAuditTrail deploys in two stages as a deployer through the real
// cutoverctl, then reads the deployment's audit trail: every step, with its
// subject, and the steps the controller took by itself; `audit verify`
// passes. An entry changed on disk (the controller stopped) makes `audit
// verify` name that entry and exit non-zero.
func TestTrustAuditTrail(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	src := filepath.Join(c.dir, "src")
	copyApp(t, src, "v1")
	c.createEnv("production", true)
	c.startAgents("production", "fe-1")
	c.registerApp(src)
	deployer, err := c.Token(context.Background(), "dora", cutoverv1.Role_ROLE_DEPLOYER, "production")
	if err != nil {
		t.Fatal(err)
	}
	asDora := append(c.CtlEnv(), "CUTOVER_TOKEN="+deployer) // CUTOVER_TOKEN wins over CUTOVER_TOKEN_FILE
	ctl := func(env []string, args ...string) string {
		t.Helper()
		code, out, errOut := runCtl(t, args, env)
		if code != 0 {
			t.Fatalf("cutoverctl %s: exit %d\n%s", strings.Join(args, " "), code, errOut)
		}
		return out
	}
	var d cutoverv1.Deployment
	if err := protojson.Unmarshal([]byte(ctl(asDora, "-o", "json", "deploy", "create", "--env", "production", "--app", "hello=v1")), &d); err != nil || d.GetId() == "" {
		t.Fatalf("deploy create printed no deployment: %v", err)
	}
	ctl(asDora, "deploy", "prepare", d.GetId(), "--wait")
	ctl(asDora, "deploy", "continue", d.GetId(), "--wait")
	c.waitDeployment(d.GetId(), deployed)

	var trail cutoverv1.ListAuditEventsResponse
	if err := protojson.Unmarshal([]byte(ctl(c.CtlEnv(), "-o", "json", "audit", "list", "--deployment", d.GetId())), &trail); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range trail.GetEvents() {
		got = append(got, fmt.Sprintf("%s %s %s", e.GetSubject(), e.GetMethod()[strings.LastIndex(e.GetMethod(), "/")+1:], e.GetCode()))
	}
	for _, want := range []string{"dora PrepareDeployment OK", "dora ContinueDeployment OK",
		"controller deployment PREPARED OK", "controller deployment DEPLOYED OK"} {
		if !slices.Contains(got, want) {
			t.Errorf("the deployment's audit trail lacks %q:\n%s", want, strings.Join(got, "\n"))
		}
	}
	for _, e := range trail.GetEvents() {
		if e.GetSubject() == "dora" && !slices.Contains(e.GetRoles(), "deployer@production") {
			t.Errorf("entry %d: roles %v, want deployer@production", e.GetSeq(), e.GetRoles())
		}
	}
	if out := ctl(c.CtlEnv(), "audit", "verify"); !strings.HasPrefix(out, "audit log verified: ") {
		t.Errorf("audit verify printed %q", out)
	}

	t.Log("an entry changed on disk while the controller is stopped")
	c.Controller.Stop()
	tampered := trail.GetEvents()[0].GetSeq()
	st, err := store.Open(filepath.Join(c.dir, "controller"))
	if err != nil {
		t.Fatal(err)
	}
	err = st.UpdateBolt(func(tx *store.Tx) error {
		r, err := tx.Audit(tampered)
		if err != nil {
			return err
		}
		r.Subject = "mallory"
		return tx.PutAudit(r)
	})
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	c.restartController()
	code, _, errOut := runCtl(t, []string{"audit", "verify"}, c.CtlEnv())
	if want := fmt.Sprintf("audit log broken at entry %d", tampered); code == 0 || !strings.Contains(errOut, want) {
		t.Errorf("audit verify after tampering: exit %d, stderr %q; want non-zero and %q", code, errOut, want)
	}
}
