package deployment

import (
	"context"
	"fmt"
	"path"

	"github.com/cutover-dev/cutover/controlplane/migrate"
	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/pkg/manifest"
)

// The SQL check of prepare.
//
// Once migrate.Generate has made the plan (read-only), planSQL runs it on a
// shadow database with migrate.Check, never on the environment's: for
// SQLite a scratch file under Config.ShadowDir with the environment
// database's schema and no rows; for PostgreSQL a scratch database
// (cutover_shadow_<random>) created on the server of the environment's
// database.shadow_dsn, or of its dsn, in which the migrations the
// environment has applied are replayed (their files come from this
// deployment's releases, and for the applications it does not deploy, from
// their stored releases), then emptied. Every group runs there with its
// transaction grouping. A failure fails prepare: the deployment ends FAILED
// before any agent is asked to stage, the reason naming the application,
// the file, the statement, its line and the database's message. The time
// each group took on the shadow is kept in the plan (GetDeploymentPlan),
// and the plan lists the statements whose outcome depends on the rows,
// which a schema-only shadow cannot prove.

// checkSQL runs plan on a shadow of db. It returns the reason prepare
// fails, or "".
func (s *Service) checkSQL(ctx context.Context, env *model.Environment, db migrate.DB, plan *migrate.Plan, migrations map[string][]migrate.File) string {
	if plan.Empty() && plan.Contract.Empty() {
		return ""
	}
	files := map[string][]migrate.File{}
	for app, fs := range migrations {
		files[app] = fs
	}
	if db.Driver == migrate.DriverPostgres {
		s.addStoredFiles(plan.Applied, files)
	}
	err := migrate.Check(ctx, db, plan, migrate.Shadow{Dir: s.shadowDir, DSN: env.Database.ShadowDSN, Files: files})
	if err != nil {
		return fmt.Sprintf("prepare ran the SQL script on a shadow database and it fails: %s; the environment's database %s was not changed and nothing was sent to the agents: fix the migration (in a new, higher-numbered file if the broken one was applied elsewhere), then create and prepare a new deployment",
			kindless(err), db)
	}
	s.log.Info("SQL script checked on a shadow database", "environment", env.Name, "deployment", plan.DeploymentID,
		"shadow", plan.Shadow.Database, "groups", len(plan.Groups), "duration", plan.Shadow.Duration, "unproven", len(plan.Unproven))
	return ""
}

// addStoredFiles adds to files, for each applied migration of an
// application that files lacks, the file of that name and checksum found
// in the application's stored releases (newest first), if any.
func (s *Service) addStoredFiles(applied []migrate.Applied, files map[string][]migrate.File) {
	want := map[string]map[string]string{} // app → name → checksum
	for _, a := range applied {
		if _, ok := files[a.Application]; ok {
			continue
		}
		if want[a.Application] == nil {
			want[a.Application] = map[string]string{}
		}
		want[a.Application][a.Name] = a.Checksum
	}
	for app, names := range want {
		_ = s.store.View(func(tx model.Tx) error {
			rels, err := tx.ReleasesOf(app)
			if err != nil {
				return err
			}
			for _, r := range rels {
				if len(names) == 0 {
					return nil
				}
				m, err := releaseManifest(tx, r.ID)
				if err != nil || m.Spec.Migrations == "" {
					continue
				}
				dir := path.Clean(m.Spec.Migrations)
				for _, f := range m.Files {
					sum, ok := names[path.Base(f.Path)]
					if !ok || path.Dir(f.Path) != dir || !f.IsRegular() {
						continue
					}
					mf, err := storedMigration(tx, f)
					if err != nil || mf.Checksum != sum {
						continue
					}
					files[app] = append(files[app], mf)
					delete(names, path.Base(f.Path))
				}
			}
			return nil
		})
	}
}

// storedMigration reads migration file f of a stored release from its
// chunks.
func storedMigration(tx model.Tx, f manifest.File) (migrate.File, error) {
	var b []byte
	for _, c := range f.Chunks {
		data, err := tx.Chunk(c.ID)
		if err != nil {
			return migrate.File{}, err
		}
		b = append(b, data...)
	}
	return migrate.ParseFile(path.Base(f.Path), b)
}
