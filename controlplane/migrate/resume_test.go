package migrate

import (
	"errors"
	"reflect"
	"testing"

	"github.com/cutover-dev/cutover/pkg/errkind"
)

// TestResume: after a run that the caller could not record (its process
// died), Resume runs only what that run did not apply; Execute refuses the
// same plan, and Resume refuses rows that another plan wrote.
func TestResume(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		files := mkFiles(t,
			"0001_users.up.sql", sqlUsers,
			"0002_email.up.sql", "-- cutover:no-transaction\n"+sqlEmail,
			"0003_orders.up.sql", sqlOrders)
		for _, tc := range []struct {
			name string
			// ranGroups is how many groups the first, unrecorded run applied.
			ranGroups   int
			wantSkipped int // migrations
			wantApplied int
		}{
			{"nothing ran", 0, 0, 3},
			{"first group ran", 1, 1, 2},
			{"two groups ran", 2, 2, 1},
			{"everything ran", 3, 3, 0},
		} {
			t.Run(tc.name, func(t *testing.T) {
				db := be.fresh(t)
				p := generate(t, db, files)
				if len(p.Groups) != 3 {
					t.Fatalf("want 3 groups, got %d", len(p.Groups))
				}
				if tc.ranGroups > 0 {
					partial := *p
					partial.Groups = p.Groups[:tc.ranGroups]
					partial.Pending = nil
					for _, g := range partial.Groups {
						for _, s := range g.Steps {
							partial.Pending = append(partial.Pending, s.Pending)
						}
					}
					partial.Script = render(&partial)
					if _, err := Execute(ctxT(t), db, &partial); err != nil {
						t.Fatalf("first run: %v", err)
					}
					_, err := Execute(ctxT(t), db, p)
					if !errors.Is(err, errkind.FailedPrecondition) {
						t.Errorf("Execute after a partial run = %v, want FailedPrecondition", err)
					}
				}
				res, err := Resume(ctxT(t), db, p)
				if err != nil {
					t.Fatalf("Resume: %v", err)
				}
				if len(res.Skipped) != tc.wantSkipped || len(res.Applied) != tc.wantApplied {
					t.Errorf("Resume skipped %d and applied %d, want %d and %d", len(res.Skipped), len(res.Applied), tc.wantSkipped, tc.wantApplied)
				}
				pool := connect(t, db)
				if got := column(t, pool, "SELECT CAST(version AS TEXT) FROM cutover_schema_migrations ORDER BY version"); !reflect.DeepEqual(got, []string{"1", "2", "3"}) {
					t.Errorf("bookkeeping versions = %q", got)
				}
				// Once everything is applied, Resume again skips all of it.
				res, err = Resume(ctxT(t), db, p)
				if err != nil || len(res.Skipped) != 3 || len(res.Applied) != 0 {
					t.Errorf("second Resume = %+v, %v; want all 3 skipped", res, err)
				}
			})
		}

		t.Run("rows of another plan", func(t *testing.T) {
			db := be.fresh(t)
			p := generate(t, db, files)
			other, err := Generate(ctxT(t), db, "dep-other", []AppFiles{{Application: "hello", Files: files[:1]}})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Execute(ctxT(t), db, other); err != nil {
				t.Fatal(err)
			}
			before := snapshot(t, db)
			_, err = Resume(ctxT(t), db, p)
			if !errors.Is(err, errkind.FailedPrecondition) {
				t.Errorf("Resume over another deployment's rows = %v, want FailedPrecondition", err)
			}
			mentions(t, err, "changed since prepare", "dep-other", "prepare again")
			unchanged(t, db, before, "a refused Resume")
		})
	})
}
