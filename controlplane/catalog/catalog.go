// Package catalog owns environments and applications: their validation,
// creation, updates and lookups. Deployments live in package deployment.
package catalog

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/cutover-dev/cutover/controlplane/migrate"
	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/controlplane/sourceroot"
	"github.com/cutover-dev/cutover/pkg/appspec"
	"github.com/cutover-dev/cutover/pkg/errkind"
	"github.com/cutover-dev/cutover/pkg/window"
)

// Config holds what the catalog needs.
type Config struct {
	Store model.Store
	Clock func() time.Time
	// SourceRoots are where application sources may live; nil: anywhere
	// (unit tests only: the controller always sets them).
	SourceRoots sourceroot.Roots
	// CheckDatabase checks that an environment's database can be reached
	// with the rights cutover needs (migrate.CheckAccess), before an
	// environment with it is saved; nil: not checked.
	CheckDatabase func(ctx context.Context, db migrate.DB, shadowDSN string) error
}

// EnvOptions change how CreateEnvironment and UpdateEnvironment work.
type EnvOptions struct {
	// SkipDatabaseCheck saves the database without Config.CheckDatabase.
	SkipDatabaseCheck bool
}

// Catalog manages environments and applications.
type Catalog struct {
	store   model.Store
	clock   func() time.Time
	roots   sourceroot.Roots
	checkDB func(ctx context.Context, db migrate.DB, shadowDSN string) error
}

// New returns a catalog.
func New(cfg Config) *Catalog {
	c := &Catalog{store: cfg.Store, clock: cfg.Clock, roots: cfg.SourceRoots, checkDB: cfg.CheckDatabase}
	if c.clock == nil {
		c.clock = time.Now
	}
	return c
}

// Environment fields that UpdateEnvironment can change, as update_mask paths.
var updatable = []string{"two_stage", "database", "windows", "prepared_ttl", "require_approval", "keep_releases", "require_prepared", "stage2_deadlines", "stage_rate", "peers_disabled"}

// validateEnvironment checks e and puts its windows in canonical form.
func validateEnvironment(e *model.Environment) error {
	if err := appspec.ValidName(e.Name); err != nil {
		return fmt.Errorf("environment name: %w", err)
	}
	if e.PreparedTTL < 0 {
		return fmt.Errorf("environment %s: prepared_ttl %v is negative: %w", e.Name, e.PreparedTTL, errkind.InvalidArgument)
	}
	if e.KeepReleases < 0 {
		return fmt.Errorf("environment %s: keep_releases %d is negative: %w", e.Name, e.KeepReleases, errkind.InvalidArgument)
	}
	if e.StageRate < 0 {
		return fmt.Errorf("environment %s: stage_rate %d is negative; give the cap in bytes per second, or 0 for none: %w", e.Name, e.StageRate, errkind.InvalidArgument)
	}
	for _, dl := range []struct {
		name string
		d    time.Duration
	}{{"arm", e.Deadlines.Arm}, {"hooks", e.Deadlines.Hooks}, {"commit", e.Deadlines.Commit}} {
		if dl.d < 0 {
			return fmt.Errorf("environment %s: stage2_deadlines.%s %v is negative (0 means the default): %w", e.Name, dl.name, dl.d, errkind.InvalidArgument)
		}
	}
	sched, err := window.ParseAll(e.Windows)
	if err != nil {
		return fmt.Errorf("environment %s: %w", e.Name, err)
	}
	e.Windows = sched.Strings()
	if len(e.Windows) == 0 {
		e.Windows = nil
	}
	return validateDatabase(e.Name, e.Database)
}

// validateDatabase checks an environment's database: none at all (no
// driver, no DSN, no timeouts), or one that migrate.DB.Validate accepts.
// Its errors show the DSN without its password.
func validateDatabase(env string, db model.Database) error {
	if db.Driver == "" && db.DSN == "" {
		if db.StatementTimeout != 0 || db.LockTimeout != 0 {
			return fmt.Errorf("environment %s: database timeouts are set but there is no database: give --db-driver and --db-dsn too: %w", env, errkind.InvalidArgument)
		}
		return nil
	}
	err := migrate.DB{Driver: db.Driver, DSN: db.DSN, StatementTimeout: db.StatementTimeout, LockTimeout: db.LockTimeout}.Validate()
	if err != nil {
		return fmt.Errorf("environment %s: %w; set both --db-driver (sqlite or postgres) and --db-dsn", env, err)
	}
	if db.ShadowDSN != "" {
		if db.Driver != migrate.DriverPostgres {
			return fmt.Errorf("environment %s: shadow_dsn is for PostgreSQL databases only (SQLite's shadow is a scratch file): %w", env, errkind.InvalidArgument)
		}
		if err := (migrate.DB{Driver: db.Driver, DSN: db.ShadowDSN}).Validate(); err != nil {
			return fmt.Errorf("environment %s: shadow_dsn: %w", env, err)
		}
	}
	return nil
}

// checkDatabase runs Config.CheckDatabase on e's database, unless there is
// none or opts skip it.
func (c *Catalog) checkDatabase(ctx context.Context, e *model.Environment, opts []EnvOptions) error {
	for _, o := range opts {
		if o.SkipDatabaseCheck {
			return nil
		}
	}
	db := e.Database
	if c.checkDB == nil || (db.Driver == "" && db.DSN == "") {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, databaseCheckTimeout)
	defer cancel()
	err := c.checkDB(ctx, migrate.DB{Driver: db.Driver, DSN: db.DSN, StatementTimeout: db.StatementTimeout, LockTimeout: db.LockTimeout}, db.ShadowDSN)
	if errors.Is(err, errkind.Unavailable) || errors.Is(err, errkind.DeadlineExceeded) {
		// The controller is up; what is missing is the database: the
		// environment cannot be saved until it can be reached.
		msg := strings.TrimSuffix(errkind.Message(err), "; nothing was changed")
		return fmt.Errorf("environment %s: checking its database: %s; nothing was saved: fix the dsn or the database, or pass --no-check (skip_database_check): %w",
			e.Name, msg, errkind.FailedPrecondition)
	}
	if err != nil {
		return fmt.Errorf("environment %s: checking its database: %w", e.Name, err)
	}
	return nil
}

// databaseCheckTimeout bounds the database check of CreateEnvironment and
// UpdateEnvironment.
const databaseCheckTimeout = 15 * time.Second

// keepDSN returns the DSN to store when an update sets dsn over cur: cur
// itself when dsn is cur as the API shows it (password redacted), so that
// a client that sends back what it read does not overwrite the password.
func keepDSN(dsn, cur string) string {
	if dsn != cur && dsn == migrate.RedactDSN(cur) {
		return cur
	}
	return dsn
}

// CreateEnvironment creates e. Unless opts skip it, a database is checked
// first (Config.CheckDatabase). Errors: InvalidArgument; AlreadyExists;
// from the check, FailedPrecondition (the database cannot be reached, or
// rights are missing).
func (c *Catalog) CreateEnvironment(ctx context.Context, e model.Environment, opts ...EnvOptions) (*model.Environment, error) {
	if err := validateEnvironment(&e); err != nil {
		return nil, err
	}
	if err := c.checkDatabase(ctx, &e, opts); err != nil {
		return nil, err
	}
	now := c.clock()
	e.CreateTime, e.UpdateTime, e.DeployedVersions = now, now, nil
	err := c.store.Update(func(tx model.Tx) error {
		if _, err := tx.Environment(e.Name); err == nil {
			return fmt.Errorf("environment %s already exists; change it with `cutoverctl env update %s`: %w", e.Name, e.Name, errkind.AlreadyExists)
		} else if !errors.Is(err, errkind.NotFound) {
			return err
		}
		return tx.PutEnvironment(&e)
	})
	if err != nil {
		return nil, err
	}
	return &e, nil
}

// UpdateEnvironment sets the fields of the environment named e.Name that
// paths name (update_mask paths; empty means all updatable fields) to their
// values in e. When paths change the database, the result is checked first
// (Config.CheckDatabase) unless opts skip it. Errors: InvalidArgument (also
// for an unknown path); NotFound; from the check, FailedPrecondition.
func (c *Catalog) UpdateEnvironment(ctx context.Context, e model.Environment, paths []string, opts ...EnvOptions) (*model.Environment, error) {
	if err := appspec.ValidName(e.Name); err != nil {
		return nil, fmt.Errorf("environment name: %w", err)
	}
	if len(paths) == 0 {
		paths = updatable
	}
	for _, p := range paths {
		top, _, _ := strings.Cut(p, ".")
		if !slices.Contains(updatable, top) || (top != "database" && top != "stage2_deadlines" && p != top) {
			return nil, fmt.Errorf("update_mask path %q cannot be updated; updatable: %s: %w", p, strings.Join(updatable, ", "), errkind.InvalidArgument)
		}
	}
	if slices.ContainsFunc(paths, func(p string) bool { return strings.HasPrefix(p, "database") }) {
		// Check the database the update leads to, outside the write
		// transaction (connecting may take seconds).
		var next *model.Environment
		err := c.store.View(func(tx model.Tx) error {
			var err error
			if next, err = tx.Environment(e.Name); err != nil {
				return err
			}
			if err := applyPaths(next, &e, paths); err != nil {
				return err
			}
			return validateEnvironment(next)
		})
		if err != nil {
			return nil, err
		}
		if err := c.checkDatabase(ctx, next, opts); err != nil {
			return nil, err
		}
	}
	var cur *model.Environment
	err := c.store.Update(func(tx model.Tx) error {
		var err error
		if cur, err = tx.Environment(e.Name); err != nil {
			return err
		}
		if err := applyPaths(cur, &e, paths); err != nil {
			return err
		}
		if err := validateEnvironment(cur); err != nil {
			return err
		}
		cur.UpdateTime = c.clock()
		return tx.PutEnvironment(cur)
	})
	if err != nil {
		return nil, err
	}
	return cur, nil
}

// applyPaths sets the fields of cur that paths name to their values in e.
func applyPaths(cur, e *model.Environment, paths []string) error {
	for _, p := range paths {
		switch p {
		case "two_stage":
			cur.TwoStage = e.TwoStage
		case "database":
			cur.Database.Driver, cur.Database.DSN = e.Database.Driver, keepDSN(e.Database.DSN, cur.Database.DSN)
			cur.Database.StatementTimeout, cur.Database.LockTimeout = e.Database.StatementTimeout, e.Database.LockTimeout
			cur.Database.ShadowDSN = keepDSN(e.Database.ShadowDSN, cur.Database.ShadowDSN)
		case "database.driver":
			cur.Database.Driver = e.Database.Driver
		case "database.dsn":
			cur.Database.DSN = keepDSN(e.Database.DSN, cur.Database.DSN)
		case "database.statement_timeout":
			cur.Database.StatementTimeout = e.Database.StatementTimeout
		case "database.lock_timeout":
			cur.Database.LockTimeout = e.Database.LockTimeout
		case "database.shadow_dsn":
			cur.Database.ShadowDSN = keepDSN(e.Database.ShadowDSN, cur.Database.ShadowDSN)
		case "windows":
			cur.Windows = e.Windows
		case "prepared_ttl":
			cur.PreparedTTL = e.PreparedTTL
		case "require_approval":
			cur.RequireApproval = e.RequireApproval
		case "require_prepared":
			cur.RequirePrepared = e.RequirePrepared
		case "keep_releases":
			cur.KeepReleases = e.KeepReleases
		case "stage_rate":
			cur.StageRate = e.StageRate
		case "peers_disabled":
			cur.PeersDisabled = e.PeersDisabled
		case "stage2_deadlines":
			cur.Deadlines = e.Deadlines
		case "stage2_deadlines.arm":
			cur.Deadlines.Arm = e.Deadlines.Arm
		case "stage2_deadlines.hooks":
			cur.Deadlines.Hooks = e.Deadlines.Hooks
		case "stage2_deadlines.commit":
			cur.Deadlines.Commit = e.Deadlines.Commit
		default:
			return fmt.Errorf("update_mask path %q cannot be updated: %w", p, errkind.InvalidArgument)
		}
	}
	return nil
}

// Environment returns one environment. Errors: InvalidArgument; NotFound.
func (c *Catalog) Environment(ctx context.Context, name string) (*model.Environment, error) {
	if err := appspec.ValidName(name); err != nil {
		return nil, fmt.Errorf("environment name: %w", err)
	}
	var e *model.Environment
	err := c.store.View(func(tx model.Tx) error {
		var err error
		e, err = tx.Environment(name)
		return err
	})
	return e, err
}

// Environments returns every environment, sorted by name.
func (c *Catalog) Environments(ctx context.Context) ([]*model.Environment, error) {
	var es []*model.Environment
	err := c.store.View(func(tx model.Tx) error {
		var err error
		es, err = tx.Environments()
		return err
	})
	return es, err
}

// ApplicationView is an application with its most recent releases.
type ApplicationView struct {
	model.Application
	Releases []*model.Release // newest first
}

// maxReleasesShown bounds ApplicationView.Releases.
const maxReleasesShown = 10

// RegisterApplication registers the application whose cutover.yaml is at
// the root of sourceDir (an absolute path), or updates its source directory
// if it is registered already. name, if set, must match the app spec.
// Errors: InvalidArgument (relative path, outside the source roots, bad or
// mismatched spec); NotFound (no cutover.yaml).
func (c *Catalog) RegisterApplication(ctx context.Context, name, sourceDir string) (*ApplicationView, error) {
	if sourceDir == "" {
		return nil, fmt.Errorf("source_dir is required: the directory that holds the application's %s: %w", appspec.FileName, errkind.InvalidArgument)
	}
	if !filepath.IsAbs(sourceDir) {
		return nil, fmt.Errorf("source_dir %q is relative: give the absolute path of the directory on the controller's machine: %w", sourceDir, errkind.InvalidArgument)
	}
	sourceDir = filepath.Clean(sourceDir)
	if c.roots != nil {
		if _, err := c.roots.Check(sourceDir); err != nil {
			return nil, err
		}
	}
	spec, err := appspec.Load(sourceDir)
	if err != nil {
		return nil, err
	}
	if name != "" && name != spec.Name {
		return nil, fmt.Errorf("%s names the application %q, not %q: %w", filepath.Join(sourceDir, appspec.FileName), spec.Name, name, errkind.InvalidArgument)
	}
	var a *model.Application
	err = c.store.Update(func(tx model.Tx) error {
		now := c.clock()
		var err error
		a, err = tx.Application(spec.Name)
		switch {
		case errors.Is(err, errkind.NotFound):
			a = &model.Application{Name: spec.Name, CreateTime: now}
		case err != nil:
			return err
		}
		a.SourceDir, a.UpdateTime = sourceDir, now
		return tx.PutApplication(a)
	})
	if err != nil {
		return nil, err
	}
	return c.Application(ctx, a.Name)
}

// Application returns one application with its recent releases. Errors:
// InvalidArgument; NotFound.
func (c *Catalog) Application(ctx context.Context, name string) (*ApplicationView, error) {
	if err := appspec.ValidName(name); err != nil {
		return nil, fmt.Errorf("application name: %w", err)
	}
	var v *ApplicationView
	err := c.store.View(func(tx model.Tx) error {
		a, err := tx.Application(name)
		if err != nil {
			return err
		}
		v, err = view(tx, a)
		return err
	})
	return v, err
}

// Applications returns every application, sorted by name.
func (c *Catalog) Applications(ctx context.Context) ([]*ApplicationView, error) {
	var out []*ApplicationView
	err := c.store.View(func(tx model.Tx) error {
		as, err := tx.Applications()
		if err != nil {
			return err
		}
		for _, a := range as {
			v, err := view(tx, a)
			if err != nil {
				return err
			}
			out = append(out, v)
		}
		return nil
	})
	return out, err
}

func view(tx model.Tx, a *model.Application) (*ApplicationView, error) {
	rs, err := tx.ReleasesOf(a.Name)
	if err != nil {
		return nil, err
	}
	if len(rs) > maxReleasesShown {
		rs = rs[:maxReleasesShown]
	}
	return &ApplicationView{Application: *a, Releases: rs}, nil
}
