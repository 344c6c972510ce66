package storetest

import (
	"errors"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/pkg/errkind"
)

func names[T any](vs []*T, name func(*T) string) []string {
	var out []string
	for _, v := range vs {
		out = append(out, name(v))
	}
	return out
}

func wantNames(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s: got %q, want %q", what, got, want)
	}
}

func orderCases() []Case {
	return []Case{
		{"lists sorted by name", func(t *testing.T, s model.Store) {
			in := []string{"m", "b", "z", "a-1", "a"}
			update(t, s, func(tx model.Tx) error {
				var errs []error
				for _, n := range in {
					errs = append(errs, tx.PutEnvironment(environment(n)), tx.PutApplication(application(n)), tx.PutAgent(agent(n, "p")),
						tx.PutOperatorToken(operatorToken(n)), tx.PutEnrollment(enrollment(n)))
				}
				return errors.Join(errs...)
			})
			want := slices.Sorted(slices.Values(in))
			view(t, s, func(tx model.Tx) error {
				envs, e1 := tx.Environments()
				apps, e2 := tx.Applications()
				agents, e3 := tx.Agents()
				tokens, e4 := tx.OperatorTokens()
				enrs, e5 := tx.Enrollments()
				wantNames(t, "environments", names(envs, func(e *model.Environment) string { return e.Name }), want)
				wantNames(t, "applications", names(apps, func(a *model.Application) string { return a.Name }), want)
				wantNames(t, "agents", names(agents, func(a *model.Agent) string { return a.Name }), want)
				wantNames(t, "operator tokens", names(tokens, func(o *model.OperatorToken) string { return o.ID }), want)
				wantNames(t, "enrollments", names(enrs, func(e *model.Enrollment) string { return e.Name }), want)
				return errors.Join(e1, e2, e3, e4, e5)
			})
		}},
		{"releases newest first, the first build kept", func(t *testing.T, s model.Store) {
			update(t, s, func(tx model.Tx) error {
				return errors.Join(tx.PutRelease(release("r-old", "hello", at(0)), []byte("old")),
					tx.PutRelease(release("r-new", "hello", at(2*time.Hour)), []byte("new")),
					tx.PutRelease(release("r-mid", "hello", at(time.Hour)), []byte("mid")),
					tx.PutRelease(release("r-other", "other", at(3*time.Hour)), []byte("other")))
			})
			update(t, s, func(tx model.Tx) error { // the same release built again
				return tx.PutRelease(release("r-old", "hello", at(5*time.Hour)), []byte("old"))
			})
			view(t, s, func(tx model.Tx) error {
				rs, err := tx.ReleasesOf("hello")
				wantNames(t, "releases of hello", names(rs, func(r *model.Release) string { return r.ID }), []string{"r-new", "r-mid", "r-old"})
				none, err2 := tx.ReleasesOf("unknown")
				if len(none) != 0 {
					t.Errorf("releases of an unknown application: %d", len(none))
				}
				return errors.Join(err, err2)
			})
		}},
		{"deployment ids and order", func(t *testing.T, s model.Store) {
			envs := []string{"production", "staging", "production", "production", "staging", "production", "production", "production", "production", "production", "production"}
			for i, env := range envs { // one update each: ids are kept across updates
				update(t, s, func(tx model.Tx) error {
					id, err := tx.NextDeploymentID()
					if err != nil {
						return err
					}
					if want := "d-" + strconv.Itoa(i+1); id != want {
						t.Errorf("NextDeploymentID: %q, want %q", id, want)
					}
					return tx.PutDeployment(deployment(id, env))
				})
			}
			view(t, s, func(tx model.Tx) error {
				all, e1 := tx.Deployments("")
				staging, e2 := tx.Deployments("staging")
				wantNames(t, "every deployment", names(all, func(d *model.Deployment) string { return d.ID }),
					[]string{"d-11", "d-10", "d-9", "d-8", "d-7", "d-6", "d-5", "d-4", "d-3", "d-2", "d-1"})
				wantNames(t, "staging's", names(staging, func(d *model.Deployment) string { return d.ID }), []string{"d-5", "d-2"})
				headers, e3 := tx.DeploymentHeaders("staging")
				wantNames(t, "staging's headers", names(headers, func(d *model.Deployment) string { return d.ID }), []string{"d-5", "d-2"})
				for _, h := range headers {
					if want, err := tx.DeploymentHeader(h.ID); err != nil || !reflect.DeepEqual(h, want) {
						t.Errorf("DeploymentHeaders' %s: %+v, want its header %+v (%v)", h.ID, h, want, err)
					}
				}
				return errors.Join(e1, e2, e3)
			})
		}},
		{"audit append", func(t *testing.T, s model.Store) {
			steps := []struct {
				seq  uint64
				want error
			}{{2, errkind.Aborted}, {0, errkind.Aborted}, {1, nil}, {1, errkind.Aborted}, {3, errkind.Aborted}, {2, nil}, {3, nil}}
			for _, st := range steps {
				err := s.Update(func(tx model.Tx) error { return tx.AppendAudit(auditRecord(st.seq)) })
				if !errors.Is(err, st.want) || (st.want == nil && err != nil) {
					t.Errorf("append %d: got %v, want %v", st.seq, err, st.want)
				}
			}
			update(t, s, func(tx model.Tx) error { // appends in one transaction see each other
				return errors.Join(tx.AppendAudit(auditRecord(4)), tx.AppendAudit(auditRecord(5)))
			})
			view(t, s, func(tx model.Tx) error {
				var seqs []uint64
				err := tx.AuditRecords(func(r *model.AuditRecord) error { seqs = append(seqs, r.Seq); return nil })
				if !slices.Equal(seqs, []uint64{1, 2, 3, 4, 5}) {
					t.Errorf("audit records: %v, want 1…5 oldest first", seqs)
				}
				last, err2 := tx.LastAudit()
				if last == nil || last.Seq != 5 {
					t.Errorf("last audit: %+v, want 5", last)
				}
				stop := errors.New("stop")
				n := 0
				if err := tx.AuditRecords(func(*model.AuditRecord) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
					t.Errorf("AuditRecords with fn failing: %v after %d calls, want fn's error after 1", err, n)
				}
				return errors.Join(err, err2)
			})
		}},
	}
}
