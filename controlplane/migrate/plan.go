package migrate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/cutover-dev/cutover/pkg/errkind"
)

// AppFiles is one application's migration files, as the release holds them.
type AppFiles struct {
	// Application is the application's name.
	Application string `json:"application"`
	// Files are its migrations, as Load returns them.
	Files []File `json:"files"`
}

// Pending is one migration a plan applies.
type Pending struct {
	Application   string `json:"application"`
	Version       int64  `json:"version"`
	Name          string `json:"name"`
	Checksum      string `json:"checksum"`
	NoTransaction bool   `json:"no_transaction,omitempty"`
}

// Step is one migration inside a group: the file's SQL, then its
// bookkeeping row.
type Step struct {
	Pending
	// SQL is the file's content.
	SQL string `json:"sql"`
	// Record is the INSERT into cutover_schema_migrations that records it.
	Record string `json:"record"`
}

// Group is what runs in one transaction, or, when NoTransaction is set, the
// one no-transaction migration that runs alone.
type Group struct {
	NoTransaction bool   `json:"no_transaction,omitempty"`
	Steps         []Step `json:"steps"`
	// ShadowDuration is how long the group took on the shadow database at
	// prepare (Check); 0 before Check.
	ShadowDuration time.Duration `json:"shadow_duration,omitempty"`
}

// Applied is one row of cutover_schema_migrations.
type Applied struct {
	Application  string `json:"application"`
	Version      int64  `json:"version"`
	Name         string `json:"name"`
	Checksum     string `json:"checksum"`
	DeploymentID string `json:"deployment_id"`
	AppliedAt    string `json:"applied_at"`
}

// Plan is the script Generate made and Execute runs. It is plain data and
// round-trips through encoding/json.
type Plan struct {
	// DeploymentID is recorded in the bookkeeping rows.
	DeploymentID string `json:"deployment_id"`
	// Driver is the driver the script was written for.
	Driver string `json:"driver"`
	// Script is the exact script: Groups rendered as text.
	Script string `json:"script"`
	// Pending are the migrations it applies, in the order it applies them.
	Pending []Pending `json:"pending"`
	// Groups are the transactions (and lone no-transaction files), in order.
	Groups []Group `json:"groups"`
	// Basis is the hex SHA-256 digest of the bookkeeping rows the plan was
	// made from (all applications'); Execute refuses to run when the
	// database's rows no longer have this digest.
	Basis string `json:"basis"`
	// Applied are those rows, kept to say what changed.
	Applied []Applied `json:"applied"`
	// Unproven are the statements whose outcome depends on the rows, which
	// a check on a schema-only shadow database cannot prove (Generate
	// lists them).
	Unproven []Unproven `json:"unproven,omitempty"`
	// Shadow is what Check found; nil before Check.
	Shadow *ShadowCheck `json:"shadow,omitempty"`

	// Phase says what the plan runs: "" the expand phase (the plan
	// Generate returns), PhaseContract, PhaseDownExpand or
	// PhaseDownContract (phases.go).
	Phase string `json:"phase,omitempty"`
	// Scope, on a down plan, lists the applications whose bookkeeping rows
	// Basis covers: a down plan runs after other deployments may have
	// migrated other applications.
	Scope []string `json:"scope,omitempty"`
	// Contract is the contract phase, on the expand plan; nil when no
	// contract migration is pending. Its Basis is the rows once the
	// expand phase ran.
	Contract *Plan `json:"contract,omitempty"`
	// Down undoes this phase (its reversible migrations, newest first);
	// nil when none of its migrations can be undone.
	Down *Plan `json:"down,omitempty"`
	// Irreversible are the migrations of this phase that no down plan
	// undoes (on a down plan: the ones it leaves applied).
	Irreversible []Irreversible `json:"irreversible,omitempty"`
}

// Empty reports whether the plan applies nothing.
func (p *Plan) Empty() bool { return p == nil || len(p.Pending) == 0 }

// Generate reads which migrations db has applied and plans the pending ones
// of apps, without writing anything to the database (a missing SQLite file
// is not created). Within an application, migrations apply in version
// order; applications apply in the order given. Consecutive transactional
// files share one transaction; a no-transaction file runs alone, after the
// transactional ones before it, and its bookkeeping row is written right
// after it.
//
// Errors: errkind.InvalidArgument for a bad DB, deployment id, application
// list or file (a statement that cannot be split, or BEGIN/COMMIT inside a
// transactional file); errkind.Unavailable when the database cannot be
// reached; errkind.FailedPrecondition for drift: an applied migration whose
// checksum differs from the release's file, one the release no longer has,
// or a new file numbered below an applied one.
func Generate(ctx context.Context, db DB, deploymentID string, apps []AppFiles) (*Plan, error) {
	if err := db.Validate(); err != nil {
		return nil, err
	}
	if err := checkInput(db.Driver, deploymentID, apps); err != nil {
		return nil, err
	}
	applied, err := readApplied(ctx, db)
	if err != nil {
		return nil, err
	}
	if err := checkDrift(apps, applied); err != nil {
		return nil, err
	}
	done := map[appVersion]bool{}
	for _, a := range applied {
		done[appVersion{a.Application, a.Version}] = true
	}
	p := &Plan{DeploymentID: deploymentID, Driver: db.Driver, Basis: digest(applied), Applied: applied}
	p.addPending(apps, done, false)
	if !p.Empty() {
		p.Script = render(p)
		p.Unproven = unproven(p)
	}
	p.Down = downPlan(p, apps)
	after := rowsThrough(p, len(p.Groups))
	c := &Plan{DeploymentID: deploymentID, Driver: db.Driver, Basis: digest(after), Applied: after, Phase: PhaseContract}
	c.addPending(apps, done, true)
	if !c.Empty() {
		c.Script = render(c)
		c.Unproven = unproven(c)
		c.Down = downPlan(c, apps)
		p.Contract = c
	}
	return p, nil
}

// addPending adds to p the files of apps that done lacks: the contract
// files with contract, the expand files without. Consecutive transactional
// files share a group; a no-transaction file is a group of its own.
func (p *Plan) addPending(apps []AppFiles, done map[appVersion]bool, contract bool) {
	var cur *Group
	for _, app := range apps {
		for _, f := range app.Files {
			if done[appVersion{app.Application, f.Version}] || f.Contract != contract {
				continue
			}
			pd := Pending{Application: app.Application, Version: f.Version, Name: f.Name, Checksum: f.Checksum, NoTransaction: f.NoTransaction}
			p.Pending = append(p.Pending, pd)
			cur = p.addStep(cur, Step{Pending: pd, SQL: f.SQL, Record: recordSQL(pd, p.DeploymentID)})
		}
	}
}

// addStep appends s to p's groups: to cur when both are transactional,
// else in a new group. It returns the group the next transactional step
// joins (nil after a no-transaction one).
func (p *Plan) addStep(cur *Group, s Step) *Group {
	if s.NoTransaction {
		p.Groups = append(p.Groups, Group{NoTransaction: true, Steps: []Step{s}})
		return nil
	}
	if cur == nil {
		p.Groups = append(p.Groups, Group{})
		cur = &p.Groups[len(p.Groups)-1]
	}
	cur.Steps = append(cur.Steps, s)
	return cur
}

type appVersion struct {
	app     string
	version int64
}

// checkInput validates what Generate is given.
func checkInput(driver, deploymentID string, apps []AppFiles) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf(format+"; nothing was planned: %w", append(a, errkind.InvalidArgument)...)
	}
	if deploymentID == "" || strings.ContainsFunc(deploymentID, isControl) {
		return bad("deployment id %q must be non-empty printable text", deploymentID)
	}
	seen := map[string]bool{}
	for _, app := range apps {
		if app.Application == "" || strings.ContainsFunc(app.Application, isControl) {
			return bad("application name %q must be non-empty printable text", app.Application)
		}
		if seen[app.Application] {
			return bad("application %q is listed twice", app.Application)
		}
		seen[app.Application] = true
		for i, f := range app.Files {
			sum := sha256.Sum256([]byte(f.SQL))
			if f.Checksum != hex.EncodeToString(sum[:]) {
				return bad("application %q: %s: the checksum does not match the content", app.Application, f.Name)
			}
			if f.Version <= 0 || strings.ContainsFunc(f.Name, isControl) {
				return bad("application %q: %q: version must be positive and the name printable", app.Application, f.Name)
			}
			if i > 0 && f.Version <= app.Files[i-1].Version {
				return bad("application %q: %s and %s are out of order or have the same version", app.Application, app.Files[i-1].Name, f.Name)
			}
			if err := checkSQL(driver, f.Name, f.SQL, f.NoTransaction); err != nil {
				return bad("application %q: %v", app.Application, err)
			}
			if d := f.Down; d != nil {
				sum := sha256.Sum256([]byte(d.SQL))
				if d.Checksum != hex.EncodeToString(sum[:]) || strings.ContainsFunc(d.Name, isControl) {
					return bad("application %q: %s: the checksum does not match the content, or the name is not printable", app.Application, d.Name)
				}
				if err := checkSQL(driver, d.Name, d.SQL, d.NoTransaction); err != nil {
					return bad("application %q: %v", app.Application, err)
				}
			}
		}
	}
	return nil
}

// checkSQL fails when the file name's statements cannot be split, or when
// a transactional file controls the transaction.
func checkSQL(driver, name, sql string, noTx bool) error {
	stmts, err := splitStatements(driver, sql)
	if err != nil {
		return fmt.Errorf("%s: %v", name, err)
	}
	if noTx {
		return nil
	}
	for _, s := range stmts {
		if s.transactionControl() {
			return fmt.Errorf("%s: statement %d (line %d) controls the transaction (%s); cutover runs each file in a transaction: remove it, or start the file with %q",
				name, s.Index, s.Line, strings.TrimSpace(s.word(0)+" "+s.word(1)), NoTransactionMarker)
		}
	}
	return nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// checkDrift fails when the database has applied a migration of one of apps
// that the release lacks or has with another checksum, or when a pending
// file is numbered below the newest applied one.
func checkDrift(apps []AppFiles, applied []Applied) error {
	var problems []string
	for _, app := range apps {
		files := map[int64]File{}
		for _, f := range app.Files {
			files[f.Version] = f
		}
		var newest int64
		done := map[int64]bool{}
		for _, a := range applied {
			if a.Application != app.Application {
				continue
			}
			done[a.Version] = true
			newest = max(newest, a.Version)
			f, ok := files[a.Version]
			switch {
			case !ok:
				problems = append(problems, fmt.Sprintf("application %q: the database has migration %d (%s, checksum %s, applied by deployment %s at %s) but the release has no migration %d",
					app.Application, a.Version, a.Name, a.Checksum, a.DeploymentID, a.AppliedAt, a.Version))
			case f.Checksum != a.Checksum:
				problems = append(problems, fmt.Sprintf("application %q: migration %d changed after it was applied: the database applied %s with checksum %s, the release's %s has checksum %s",
					app.Application, a.Version, a.Name, a.Checksum, f.Name, f.Checksum))
			}
		}
		for _, f := range app.Files {
			if !done[f.Version] && f.Version < newest {
				problems = append(problems, fmt.Sprintf("application %q: %s (migration %d) is new but numbered below migration %d, which the database has applied",
					app.Application, f.Name, f.Version, newest))
			}
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("the database's migrations do not match the release: %s; nothing was changed: restore the applied files unchanged in the release and put new changes in new, higher-numbered migrations: %w",
			strings.Join(problems, "; "), errkind.FailedPrecondition)
	}
	return nil
}

// recordSQL is the bookkeeping INSERT for p.
func recordSQL(p Pending, deploymentID string) string {
	return fmt.Sprintf("INSERT INTO %s (application, version, name, checksum, applied_at, deployment_id) VALUES (%s, %d, %s, %s, CURRENT_TIMESTAMP, %s)",
		table, quote(p.Application), p.Version, quote(p.Name), quote(p.Checksum), quote(deploymentID))
}

// quote returns s as an SQL string literal.
func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// beginSQL is the statement that opens a transactional group.
func beginSQL(driver string) string {
	if driver == DriverSQLite {
		return "BEGIN IMMEDIATE" // take the write lock now, not at the first write
	}
	return "BEGIN"
}

// render writes p's groups as the script Execute runs.
func render(p *Plan) string {
	var b strings.Builder
	lock := fmt.Sprintf("SELECT pg_advisory_lock(%d)", pgLockKey)
	timeouts := "sets statement_timeout and lock_timeout from the environment,"
	if p.Driver == DriverSQLite {
		lock = "an flock on <database>" + lockFileSuffix
		timeouts = "sets busy_timeout to lock_timeout (statement_timeout bounds each statement),"
	}
	b.WriteString(phaseHeader(p))
	fmt.Fprintf(&b, "-- Made from the bookkeeping rows with digest %s.\n", p.Basis)
	fmt.Fprintf(&b, "-- Before group 1, cutover takes the migration lock (%s),\n", lock)
	fmt.Fprintf(&b, "-- %s\n", timeouts)
	fmt.Fprintf(&b, "-- creates %s if it is missing, and checks that its rows\n", table)
	b.WriteString("-- still have that digest; if they do not, nothing below runs.\n")
	for gi, g := range p.Groups {
		b.WriteString("\n")
		if g.NoTransaction {
			fmt.Fprintf(&b, "-- Group %d of %d: no transaction: %s runs alone, then its bookkeeping row is written.\n",
				gi+1, len(p.Groups), g.Steps[0].Name)
		} else {
			fmt.Fprintf(&b, "-- Group %d of %d: one transaction, %d migration(s).\n%s;\n", gi+1, len(p.Groups), len(g.Steps), beginSQL(p.Driver))
		}
		for _, s := range g.Steps {
			fmt.Fprintf(&b, "\n-- ===== %s: %s (migration %d, sha256 %s)\n", s.Application, s.Name, s.Version, s.Checksum)
			sql := strings.TrimRight(s.SQL, " \t\r\n")
			b.WriteString(sql)
			b.WriteString("\n")
			if stmts, err := splitStatements(p.Driver, s.SQL); err == nil && len(stmts) > 0 && !stmts[len(stmts)-1].Terminated {
				b.WriteString(";\n")
			}
			b.WriteString(s.Record + ";\n")
		}
		if !g.NoTransaction {
			b.WriteString("\nCOMMIT;\n")
		}
	}
	return b.String()
}
