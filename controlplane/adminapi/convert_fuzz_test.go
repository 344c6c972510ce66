package adminapi

import (
	"errors"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cutover-dev/cutover/controlplane/auth"
	"github.com/cutover-dev/cutover/controlplane/migrate"
	"github.com/cutover-dev/cutover/pkg/errkind"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// FuzzConvertRequests unmarshals arbitrary bytes into the requests whose
// fields convert.go (and audit.go, trust.go) take, as a client may send
// them, and converts them: nothing panics; an environment keeps what the
// operator set through environmentFromProto → environmentToProto →
// environmentFromProto (the DSN redacted, and redacted once only); an audit
// filter is refused only with InvalidArgument and never starts after it
// ends; a role is a known one or none.
func FuzzConvertRequests(f *testing.F) {
	add := func(kind byte, m proto.Message) {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(kind, b)
	}
	add(0, &cutoverv1.CreateEnvironmentRequest{Environment: &cutoverv1.Environment{Name: "prod", TwoStage: true,
		Windows: []string{"Mon-Fri 02:00-04:00 Europe/Lisbon", "nonsense"}, PreparedTtl: durationpb.New(time.Hour), RequireApproval: true, KeepReleases: 5,
		Database: &cutoverv1.Database{Driver: "postgres", Dsn: "postgres://app:s3cret@db/app?password=x", StatementTimeout: durationpb.New(time.Minute)}}})
	add(0, &cutoverv1.CreateEnvironmentRequest{Environment: &cutoverv1.Environment{Name: "x",
		PreparedTtl: &durationpb.Duration{Seconds: -1 << 62, Nanos: 2e9}, KeepReleases: -1,
		Database: &cutoverv1.Database{Dsn: "host=db password = 'two words' dbname=app", LockTimeout: &durationpb.Duration{Seconds: 1 << 62}}}})
	add(0, &cutoverv1.CreateEnvironmentRequest{Environment: &cutoverv1.Environment{Name: "y",
		Database: &cutoverv1.Database{Dsn: "host=db password = 's3'cret dbname=app"}}}) // found by fuzzing: text after the quote
	add(1, &cutoverv1.UpdateEnvironmentRequest{Environment: &cutoverv1.Environment{Name: "prod"}})
	add(2, &cutoverv1.ListAuditEventsRequest{Environment: "prod", StartTime: timestamppb.New(time.Unix(2e9, 0)), EndTime: timestamppb.New(time.Unix(1e9, 0))})
	add(2, &cutoverv1.ListAuditEventsRequest{StartTime: &timestamppb.Timestamp{Seconds: 1 << 62}})
	add(3, &cutoverv1.ContinueDeploymentRequest{Id: "d-1", Force: true, ForceReason: "r", AtWindow: true, RequirePrepared: true})
	add(4, &cutoverv1.StartDeploymentRequest{Id: "d-1", Force: true})
	add(5, &cutoverv1.CreateTokenRequest{Subject: "ops", Role: cutoverv1.Role_ROLE_DEPLOYER})
	add(5, &cutoverv1.CreateTokenRequest{Role: 99})
	f.Add(byte(0), []byte{0x0a, 0x02, 0x0a, 0xff})

	now := time.Date(2026, 3, 1, 2, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, kind byte, b []byte) {
		switch kind % 6 {
		case 0, 1:
			var env *cutoverv1.Environment
			if kind%6 == 0 {
				var req cutoverv1.CreateEnvironmentRequest
				if proto.Unmarshal(b, &req) != nil {
					return
				}
				env = req.GetEnvironment()
			} else {
				var req cutoverv1.UpdateEnvironmentRequest
				if proto.Unmarshal(b, &req) != nil {
					return
				}
				env = req.GetEnvironment()
			}
			e := environmentFromProto(env)
			out := environmentToProto(&e, now)
			back := environmentFromProto(out)
			if back.Name != e.Name || back.TwoStage != e.TwoStage || back.RequireApproval != e.RequireApproval ||
				len(back.Windows) != len(e.Windows) || back.Database.Driver != e.Database.Driver ||
				back.Database.StatementTimeout != e.Database.StatementTimeout || back.Database.LockTimeout != e.Database.LockTimeout ||
				(e.PreparedTTL > 0 && back.PreparedTTL != e.PreparedTTL) || (e.KeepReleases > 0 && back.KeepReleases != e.KeepReleases) {
				t.Fatalf("environment %v converts to %+v, shown as %v, read back as %+v", env, e, out, back)
			}
			for i := range e.Windows {
				if back.Windows[i] != e.Windows[i] {
					t.Fatalf("window %q read back as %q", e.Windows[i], back.Windows[i])
				}
			}
			if redacted := migrate.RedactDSN(back.Database.DSN); redacted != back.Database.DSN {
				t.Fatalf("dsn %q is shown as %q, which redacts further to %q", e.Database.DSN, back.Database.DSN, redacted)
			}
		case 2:
			var req cutoverv1.ListAuditEventsRequest
			if proto.Unmarshal(b, &req) != nil {
				return
			}
			f, err := auditFilterFromProto(&req)
			if err != nil {
				if !errors.Is(err, errkind.InvalidArgument) {
					t.Fatalf("auditFilterFromProto(%v): error %v is not InvalidArgument", &req, err)
				}
				return
			}
			if !f.Start.IsZero() && !f.End.IsZero() && f.Start.After(f.End) {
				t.Fatalf("auditFilterFromProto(%v) = %+v: starts after it ends", &req, f)
			}
			if f.Environment != req.GetEnvironment() || f.Deployment != req.GetDeployment() || f.Subject != req.GetSubject() {
				t.Fatalf("auditFilterFromProto(%v) = %+v", &req, f)
			}
		case 3:
			var req cutoverv1.ContinueDeploymentRequest
			if proto.Unmarshal(b, &req) != nil {
				return
			}
			o := continueOptions(&req)
			if o.Force != req.GetForce() || o.ForceReason != req.GetForceReason() || o.AtWindow != req.GetAtWindow() || o.RequirePrepared != req.GetRequirePrepared() {
				t.Fatalf("continueOptions(%v) = %+v", &req, o)
			}
		case 4:
			var req cutoverv1.StartDeploymentRequest
			if proto.Unmarshal(b, &req) != nil {
				return
			}
			if o := startOptions(&req); o.Force != req.GetForce() || o.ForceReason != req.GetForceReason() || o.AtWindow || o.RequirePrepared {
				t.Fatalf("startOptions(%v) = %+v", &req, o)
			}
		case 5:
			var req cutoverv1.CreateTokenRequest
			if proto.Unmarshal(b, &req) != nil {
				return
			}
			r := roleFromProto(req.GetRole())
			if r == 0 {
				if _, known := cutoverv1.Role_name[int32(req.GetRole())]; known && req.GetRole() != cutoverv1.Role_ROLE_UNSPECIFIED {
					t.Fatalf("role %v is known but converts to none", req.GetRole())
				}
				return
			}
			if r < auth.Viewer || r > auth.Admin || roleToProto(r.String()) != req.GetRole() {
				t.Fatalf("role %v converts to %v, shown as %v", req.GetRole(), r, roleToProto(r.String()))
			}
		}
	})
}
