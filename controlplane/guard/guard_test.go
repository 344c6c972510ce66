package guard

import (
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/cutover-dev/cutover/controlplane/auth"
	"github.com/cutover-dev/cutover/pkg/token"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// Every method of both services has a rule: one without would be refused.
func TestEveryMethodHasARule(t *testing.T) {
	for _, sd := range []grpc.ServiceDesc{cutoverv1.AdminService_ServiceDesc, cutoverv1.AgentService_ServiceDesc} {
		var names []string
		for _, m := range sd.Methods {
			names = append(names, m.MethodName)
		}
		for _, s := range sd.Streams {
			names = append(names, s.StreamName)
		}
		for _, n := range names {
			full := "/" + sd.ServiceName + "/" + n
			r, ok := rules[full]
			if !ok {
				t.Errorf("%s has no rule", full)
				continue
			}
			if !r.open && r.action == 0 {
				t.Errorf("%s has no action", full)
			}
		}
	}
	if len(rules) != len(cutoverv1.AdminService_ServiceDesc.Methods)+len(cutoverv1.AdminService_ServiceDesc.Streams)+
		len(cutoverv1.AgentService_ServiceDesc.Methods)+len(cutoverv1.AgentService_ServiceDesc.Streams) {
		t.Errorf("rules has entries for methods that do not exist")
	}
}

func TestSummaryHoldsNoSecrets(t *testing.T) {
	join := token.New()
	join.CAHash = strings.Repeat("a", 64)
	tests := []struct {
		name   string
		msg    proto.Message
		secret string
		want   string
	}{
		{"enroll", &cutoverv1.EnrollRequest{JoinToken: join.Join(), Environment: "production", Name: "fe-1", Csr: []byte("csr")},
			join.Secret, `"join_token_id":"` + join.ID + `"`},
		{"environment dsn", &cutoverv1.CreateEnvironmentRequest{Environment: &cutoverv1.Environment{Name: "production",
			Database: &cutoverv1.Database{Driver: "postgres", Dsn: "postgres://app:hunter2@db/app"}}}, "hunter2", `"name":"production"`},
		{"update dsn", &cutoverv1.UpdateEnvironmentRequest{Environment: &cutoverv1.Environment{Name: "production",
			Database: &cutoverv1.Database{Driver: "postgres", Dsn: "host=db password=hunter2"}}}, "hunter2", `"driver":"postgres"`},
		{"continue", &cutoverv1.ContinueDeploymentRequest{Id: "d-1", Force: true, ForceReason: "INC-1"}, "\x00", `"id":"d-1"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := summarize(tt.msg)
			if strings.Contains(got, tt.secret) {
				t.Errorf("summary %s holds the secret", got)
			}
			if !strings.Contains(strings.ReplaceAll(got, " ", ""), tt.want) {
				t.Errorf("summary %s lacks %s", got, tt.want)
			}
		})
	}
	if r := reasonOf(&cutoverv1.ContinueDeploymentRequest{ForceReason: "INC-1"}); r != "INC-1" {
		t.Errorf("reason = %q", r)
	}
	if r := reasonOf(&cutoverv1.AbortDeploymentRequest{Reason: "wrong build"}); r != "wrong build" {
		t.Errorf("reason = %q", r)
	}
	// A stop is audited with its reason, like an abort's.
	if r := reasonOf(&cutoverv1.StopApplicationRequest{Environment: "prod", Application: "hello", Reason: "INC-7 leak"}); r != "INC-7 leak" {
		t.Errorf("reason = %q", r)
	}
	if r := rules[admin+"StopApplication"]; r.action != auth.Deploy || !r.mutating ||
		r.target(&cutoverv1.StopApplicationRequest{Environment: "prod"}).env != "prod" {
		t.Errorf("StopApplication rule = %+v: want deploy on the environment, audited", r)
	}
	// A forced abort (it ends a stuck stage 2) is audited as such, with its reason.
	forced := &cutoverv1.AbortDeploymentRequest{Id: "d-1", Reason: "fe-3 hangs", Force: true}
	if got := summarize(forced); !strings.Contains(strings.ReplaceAll(got, " ", ""), `"force":true`) {
		t.Errorf("summary %s lacks force", got)
	}
	if r := reasonOf(forced); r != "fe-3 hangs" {
		t.Errorf("reason = %q", r)
	}
}
