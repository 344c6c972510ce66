package storecopy

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/controlplane/etcdstore"
	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/controlplane/store"
	"github.com/cutover-dev/cutover/internal/etcdcluster"
	"github.com/cutover-dev/cutover/pkg/errkind"
	"github.com/cutover-dev/cutover/pkg/manifest"
)

var cluster *etcdcluster.Cluster

func TestMain(m *testing.M) {
	os.Exit(etcdcluster.Main(m, 1, func(c *etcdcluster.Cluster) { cluster = c }))
}

var t0 = time.Date(2026, 3, 4, 5, 6, 7, 8000, time.UTC)

func bolt(t *testing.T) *store.Store {
	t.Helper()
	s, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func etcd(t *testing.T) model.Store {
	t.Helper()
	s, err := etcdstore.New(etcdstore.Config{Client: etcdcluster.Client(t, cluster), Prefix: "/" + t.Name() + "/", Chunks: bolt(t)})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// populated is a bbolt store with records of every kind a controller
// keeps: what a controller that ran alone for a while holds.
func populated(t *testing.T) *store.Store {
	t.Helper()
	s := bolt(t)
	m := (&manifest.Manifest{Application: "hello"}).Encode()
	err := s.Update(func(tx model.Tx) error {
		errs := []error{
			tx.PutEnvironment(&model.Environment{Name: "production", TwoStage: true, KeepReleases: 3, CreateTime: t0}),
			tx.PutApplication(&model.Application{Name: "hello", SourceDir: "/src/hello", CreateTime: t0}),
			tx.PutRelease(&model.Release{ID: "r-1", Application: "hello", CreateTime: t0}, m),
			tx.PutRelease(&model.Release{ID: "r-2", Application: "hello", CreateTime: t0.Add(time.Hour)}, m),
			tx.PutAgent(&model.Agent{Name: "fe-1", Environment: "production", LastSeen: t0}),
			tx.PutEnrollment(&model.Enrollment{ID: "e-1", Name: "fe-1", Environment: "production", EnrollTime: t0}),
			tx.PutOperatorToken(&model.OperatorToken{ID: "tok-1", Hash: "h", Subject: "admin", Role: "admin", CreateTime: t0}),
		}
		for i := 1; i <= 3; i++ {
			id, err := tx.NextDeploymentID()
			errs = append(errs, err, tx.PutDeployment(&model.Deployment{ID: id, Environment: "production", State: model.Deployed, CreateTime: t0,
				Applications: []model.DeploymentApplication{{Name: "hello", ReleaseID: "r-2"}},
				Agents:       []model.DeploymentAgent{{Name: "fe-1", State: model.AgentActive}}}))
		}
		errs = append(errs, tx.PutSQLPlan("d-2", []byte("plan of d-2")))
		for seq := uint64(1); seq <= 2*auditBatch+3; seq++ {
			errs = append(errs, tx.AppendAudit(&model.AuditRecord{Seq: seq, Time: t0, Subject: "admin", Method: fmt.Sprint("m", seq), Code: "OK"}))
		}
		return errors.Join(errs...)
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// snapshot reads every record of s that Copy copies.
func snapshot(t *testing.T, s model.Store) map[string]any {
	t.Helper()
	out := map[string]any{}
	err := s.View(func(tx model.Tx) error {
		var errs [10]error
		out["environments"], errs[0] = tx.Environments()
		out["applications"], errs[1] = tx.Applications()
		out["releases"], errs[2] = tx.ReleasesOf("hello")
		out["manifest"], errs[3] = tx.Manifest("r-2")
		out["deployments"], errs[4] = tx.Deployments("")
		out["plan"], errs[5] = tx.SQLPlan("d-2")
		out["agents"], errs[6] = tx.Agents()
		out["enrollments"], errs[7] = tx.Enrollments()
		out["tokens"], errs[8] = tx.OperatorTokens()
		var audit []*model.AuditRecord
		errs[9] = tx.AuditRecords(func(r *model.AuditRecord) error { audit = append(audit, r); return nil })
		out["audit"] = audit
		return errors.Join(errs[:]...)
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestCopy(t *testing.T) {
	for _, tt := range []struct {
		name string
		to   func(t *testing.T) model.Store
	}{
		{"to bbolt", func(t *testing.T) model.Store { return bolt(t) }},
		{"to etcd", etcd},
	} {
		t.Run(tt.name, func(t *testing.T) {
			from, to := populated(t), tt.to(t)
			n, err := Copy(from, to)
			if err != nil {
				t.Fatal(err)
			}
			want := Counts{Environments: 1, Applications: 1, Releases: 2, Deployments: 3, Agents: 1, Enrollments: 1, OperatorTokens: 1, AuditRecords: 2*auditBatch + 3}
			if n != want {
				t.Errorf("copied %v\nwant   %v", n, want)
			}
			got, wantRecords := snapshot(t, to), snapshot(t, from)
			for k := range wantRecords {
				if !reflect.DeepEqual(got[k], wantRecords[k]) {
					t.Errorf("%s differ after the copy:\n got %+v\nwant %+v", k, got[k], wantRecords[k])
				}
			}
			// The next deployment does not take an id the copy brought.
			var id string
			if err := to.Update(func(tx model.Tx) (err error) { id, err = tx.NextDeploymentID(); return err }); err != nil || deploymentNumber(id) <= 3 {
				t.Errorf("the next deployment id after the copy is %q (%v); want past d-3", id, err)
			}
			// A destination in use is refused, and nothing is written.
			if _, err := Copy(from, to); !errors.Is(err, errkind.FailedPrecondition) {
				t.Errorf("a second copy: %v, want FailedPrecondition", err)
			}
		})
	}
}

// TestCopyCutShort: a copy that stopped before the operator tokens (the
// controller was killed) leaves the destination not in use; the next
// copy completes it without appending the audit records twice.
func TestCopyCutShort(t *testing.T) {
	from, to := populated(t), etcd(t)
	var n Counts
	for _, step := range []func(model.Store, model.Store, *Counts) error{copyCatalog, copyReleases, copyTrust, copyDeployments, copyAudit} {
		if err := step(from, to, &n); err != nil {
			t.Fatal(err)
		}
	}
	if used, err := InUse(to); err != nil || used {
		t.Fatalf("a copy cut short before the tokens: in use %v (%v), want not", used, err)
	}
	n, err := Copy(from, to)
	if err != nil {
		t.Fatal(err)
	}
	if n.AuditRecords != 0 {
		t.Errorf("the second copy appended %d audit records again", n.AuditRecords)
	}
	if got, want := snapshot(t, to), snapshot(t, from); !reflect.DeepEqual(got, want) {
		t.Errorf("after the second copy the records differ")
	}
}
