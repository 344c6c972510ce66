package catalog

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/controlplane/migrate"
	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/controlplane/store"
	"github.com/cutover-dev/cutover/pkg/errkind"
)

func newCatalog(t *testing.T) *Catalog {
	t.Helper()
	s, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	return New(Config{Store: s, Clock: func() time.Time { now = now.Add(time.Second); return now }})
}

func TestEnvironments(t *testing.T) {
	c := newCatalog(t)
	ctx := context.Background()
	if _, err := c.CreateEnvironment(ctx, model.Environment{Name: "production", PreparedTTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		err   error
		kind  error
		check func() bool
	}{
		{"create again", func() error {
			_, err := c.CreateEnvironment(ctx, model.Environment{Name: "production"})
			return err
		}(), errkind.AlreadyExists, nil},
		{"bad name", func() error { _, err := c.CreateEnvironment(ctx, model.Environment{Name: "a_b"}); return err }(), errkind.InvalidArgument, nil},
		{"bad driver", func() error {
			_, err := c.CreateEnvironment(ctx, model.Environment{Name: "x", Database: model.Database{Driver: "oracle"}})
			return err
		}(), errkind.InvalidArgument, nil},
		{"bad window", func() error {
			_, err := c.UpdateEnvironment(ctx, model.Environment{Name: "production", Windows: []string{"Mon-Fri 02:00-04:00 Mars/Olympus"}}, []string{"windows"})
			return err
		}(), errkind.InvalidArgument, nil},
		{"unknown", func() error { _, err := c.Environment(ctx, "staging"); return err }(), errkind.NotFound, nil},
		{"update unknown path", func() error {
			_, err := c.UpdateEnvironment(ctx, model.Environment{Name: "production"}, []string{"create_time"})
			return err
		}(), errkind.InvalidArgument, nil},
		{"update negative ttl", func() error {
			_, err := c.UpdateEnvironment(ctx, model.Environment{Name: "production", PreparedTTL: -time.Hour}, []string{"prepared_ttl"})
			return err
		}(), errkind.InvalidArgument, nil},
		{"update a negative stage_rate", func() error {
			_, err := c.UpdateEnvironment(ctx, model.Environment{Name: "production", StageRate: -1}, []string{"stage_rate"})
			return err
		}(), errkind.InvalidArgument, nil},
		{"create with a negative stage_rate", func() error {
			_, err := c.CreateEnvironment(ctx, model.Environment{Name: "y", StageRate: -1})
			return err
		}(), errkind.InvalidArgument, nil},
		{"update stage_rate, kept on reading", func() error {
			_, err := c.UpdateEnvironment(ctx, model.Environment{Name: "production", StageRate: 50 << 20}, []string{"stage_rate"})
			return err
		}(), nil, func() bool {
			e, _ := c.Environment(ctx, "production")
			return e.StageRate == 50<<20 && e.PreparedTTL == time.Hour
		}},
		{"update peers_disabled, kept on reading", func() error {
			_, err := c.UpdateEnvironment(ctx, model.Environment{Name: "production", PeersDisabled: true}, []string{"peers_disabled"})
			return err
		}(), nil, func() bool {
			e, _ := c.Environment(ctx, "production")
			return e.PeersDisabled && e.StageRate == 50<<20
		}},
		{"update two_stage only", func() error {
			_, err := c.UpdateEnvironment(ctx, model.Environment{Name: "production", TwoStage: true}, []string{"two_stage"})
			return err
		}(), nil, func() bool {
			e, _ := c.Environment(ctx, "production")
			return e.TwoStage && e.PreparedTTL == time.Hour && e.UpdateTime.After(e.CreateTime)
		}},
		{"update a negative deadline", func() error {
			_, err := c.UpdateEnvironment(ctx, model.Environment{Name: "production", Deadlines: model.Stage2Deadlines{Commit: -time.Second}}, []string{"stage2_deadlines.commit"})
			return err
		}(), errkind.InvalidArgument, nil},
		{"update one deadline, then all", func() error {
			e, err := c.UpdateEnvironment(ctx, model.Environment{Name: "production", Deadlines: model.Stage2Deadlines{Commit: 5 * time.Second, Arm: time.Hour}}, []string{"stage2_deadlines.commit"})
			if err != nil || e.Deadlines != (model.Stage2Deadlines{Commit: 5 * time.Second}) {
				return fmt.Errorf("one deadline: %+v, %v", e, err)
			}
			e, err = c.UpdateEnvironment(ctx, model.Environment{Name: "production", Deadlines: model.Stage2Deadlines{Arm: time.Minute, Hooks: 2 * time.Minute}}, []string{"stage2_deadlines"})
			if err != nil || e.Deadlines != (model.Stage2Deadlines{Arm: time.Minute, Hooks: 2 * time.Minute}) {
				return fmt.Errorf("all deadlines: %+v, %v", e, err)
			}
			return nil
		}(), nil, nil},
		{"update database.dsn without a driver", func() error {
			_, err := c.UpdateEnvironment(ctx, model.Environment{Name: "production", Database: model.Database{DSN: "/db"}}, []string{"database.dsn"})
			return err
		}(), errkind.InvalidArgument, nil},
		{"timeouts without a database", func() error {
			_, err := c.CreateEnvironment(ctx, model.Environment{Name: "x", Database: model.Database{LockTimeout: time.Second}})
			return err
		}(), errkind.InvalidArgument, nil},
		{"in-memory sqlite", func() error {
			_, err := c.CreateEnvironment(ctx, model.Environment{Name: "x", Database: model.Database{Driver: "sqlite", DSN: ":memory:"}})
			return err
		}(), errkind.InvalidArgument, nil},
		{"a refused dsn is not shown with its password", func() error {
			_, err := c.UpdateEnvironment(ctx, model.Environment{Name: "production", Database: model.Database{Driver: "postgres", DSN: "postgres://app:t0psecret@db:notaport/app"}}, []string{"database"})
			if err != nil && strings.Contains(err.Error(), "t0psecret") {
				return fmt.Errorf("the error shows the password: %v", err)
			}
			return err
		}(), errkind.InvalidArgument, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.kind == nil && tt.err != nil || tt.kind != nil && !errors.Is(tt.err, tt.kind) {
				t.Fatalf("err = %v, want %v", tt.err, tt.kind)
			}
			if tt.check != nil && !tt.check() {
				t.Fatal("check failed")
			}
		})
	}
	// A refused update changed nothing.
	e, _ := c.Environment(ctx, "production")
	if e.PreparedTTL != time.Hour {
		t.Fatalf("prepared_ttl = %v after a refused update", e.PreparedTTL)
	}
}

func TestRegisterApplication(t *testing.T) {
	c := newCatalog(t)
	ctx := context.Background()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "cutover.yaml"), []byte("name: hello\nrun:\n  command: ./hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	a, err := c.RegisterApplication(ctx, "", dir)
	if err != nil || a.Name != "hello" || a.SourceDir != dir {
		t.Fatalf("register: %+v, %v", a, err)
	}
	again, err := c.RegisterApplication(ctx, "hello", dir+"/")
	if err != nil || !again.CreateTime.Equal(a.CreateTime) || !again.UpdateTime.After(a.UpdateTime) {
		t.Fatalf("register again: %+v, %v", again, err)
	}
	for name, tt := range map[string]struct {
		name, dir string
		kind      error
	}{
		"relative":      {"", "examples/hello", errkind.InvalidArgument},
		"empty":         {"", "", errkind.InvalidArgument},
		"name mismatch": {"web", dir, errkind.InvalidArgument},
		"no spec":       {"", t.TempDir(), errkind.NotFound},
	} {
		if _, err := c.RegisterApplication(ctx, tt.name, tt.dir); !errors.Is(err, tt.kind) {
			t.Errorf("%s: err = %v, want %v", name, err, tt.kind)
		}
	}
	if as, err := c.Applications(ctx); err != nil || len(as) != 1 {
		t.Fatalf("applications = %v, %v", as, err)
	}
}

// TestEnvironmentDatabase: the database is stored with its password, and a
// client that sends back the redacted DSN it was shown keeps it.
func TestEnvironmentDatabase(t *testing.T) {
	c := newCatalog(t)
	ctx := context.Background()
	if _, err := c.CreateEnvironment(ctx, model.Environment{Name: "production"}); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name  string
		set   model.Database
		paths []string
		want  model.Database
	}{
		{"set the database", model.Database{Driver: "postgres", DSN: "postgres://app:s3cret@db/app", LockTimeout: time.Second}, []string{"database"},
			model.Database{Driver: "postgres", DSN: "postgres://app:s3cret@db/app", LockTimeout: time.Second}},
		{"the redacted dsn sent back keeps the password", model.Database{Driver: "postgres", DSN: "postgres://app:xxxxx@db/app", StatementTimeout: time.Minute}, []string{"database"},
			model.Database{Driver: "postgres", DSN: "postgres://app:s3cret@db/app", StatementTimeout: time.Minute}},
		{"a new dsn only", model.Database{DSN: "postgres://app:n3w@db2/app"}, []string{"database.dsn"},
			model.Database{Driver: "postgres", DSN: "postgres://app:n3w@db2/app", StatementTimeout: time.Minute}},
		{"a lock timeout only", model.Database{LockTimeout: 3 * time.Second}, []string{"database.lock_timeout"},
			model.Database{Driver: "postgres", DSN: "postgres://app:n3w@db2/app", StatementTimeout: time.Minute, LockTimeout: 3 * time.Second}},
		{"sqlite", model.Database{Driver: "sqlite", DSN: "/var/lib/app.db"}, []string{"database"},
			model.Database{Driver: "sqlite", DSN: "/var/lib/app.db"}},
		{"no database", model.Database{}, []string{"database"}, model.Database{}},
	}
	for _, st := range steps {
		e, err := c.UpdateEnvironment(ctx, model.Environment{Name: "production", Database: st.set}, st.paths)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if e.Database != st.want {
			t.Fatalf("%s: database = %+v, want %+v", st.name, e.Database, st.want)
		}
	}
}

// TestEnvironmentDatabaseCheck: a database the check cannot reach is
// refused with FailedPrecondition (the controller is up; the database is
// what is missing), saying how to skip the check, and nothing is saved;
// SkipDatabaseCheck saves it unchecked; an update that leaves the
// database alone is not checked.
func TestEnvironmentDatabaseCheck(t *testing.T) {
	c := newCatalog(t)
	checked := 0
	c.checkDB = func(ctx context.Context, db migrate.DB, shadowDSN string) error {
		checked++
		return fmt.Errorf("cannot connect to the database %s: refused; nothing was changed: %w", db, errkind.Unavailable)
	}
	ctx := context.Background()
	env := model.Environment{Name: "production", Database: model.Database{Driver: "postgres", DSN: "postgres://app:s3cret@db/app"}}
	_, err := c.CreateEnvironment(ctx, env)
	if !errors.Is(err, errkind.FailedPrecondition) || errors.Is(err, errkind.Unavailable) {
		t.Fatalf("CreateEnvironment with an unreachable database: %v, want FailedPrecondition only", err)
	}
	for _, w := range []string{"cannot connect to the database postgres:postgres://app:xxxxx@db/app: refused; nothing was saved", "--no-check"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%q does not say %q", err, w)
		}
	}
	if _, err := c.Environment(ctx, "production"); !errors.Is(err, errkind.NotFound) {
		t.Fatalf("the refused environment was saved: %v", err)
	}
	if _, err := c.CreateEnvironment(ctx, env, EnvOptions{SkipDatabaseCheck: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.UpdateEnvironment(ctx, model.Environment{Name: "production", KeepReleases: 3}, []string{"keep_releases"}); err != nil {
		t.Fatal(err)
	}
	if checked != 1 {
		t.Errorf("the database was checked %d times, want once", checked)
	}
}
