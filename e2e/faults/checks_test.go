package faults

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	agentstore "github.com/cutover-dev/cutover/agent/store"
	ctlstore "github.com/cutover-dev/cutover/controlplane/store"
	"github.com/cutover-dev/cutover/internal/localcluster"
	"github.com/cutover-dev/cutover/pkg/poll"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// check verifies the invariants once the faults are over:
//
//   - every deployment is final (or PREPARED, prepare-only) within
//     finalBound (checked as it waited);
//   - nothing acknowledged is lost: each id CreateDeployment returned is
//     still there, in a state no earlier than any acknowledged or seen,
//     and a final state never changes (but DEPLOYED to ROLLED_BACK on an
//     acknowledged rollback);
//   - every front-end runs one and the same release, the one the
//     deployments' final states say (ROOT/hello/current, ListAgents, the
//     app's answer), and a PREPARED deployment is staged on each;
//   - the migrations ran exactly once or not at all, as the states say;
//   - each before_activate hook ran at most once per front-end and release;
//   - ROOT/hello/current never dangled (watched during the run, checked
//     at the end);
//   - nothing was written outside the cluster's roots;
//   - no process panicked or raced (their logs);
//   - the bbolt files pass bbolt's consistency check (processes stopped).
func (r *run) check(ctx context.Context) {
	if err := r.c.WaitAgentsConnected(ctx, env); err != nil {
		r.violation("after the faults, the agents do not all connect again within %s: %v", localcluster.StartTimeout, err)
	}
	r.checkAcknowledged(ctx)
	r.checkFleet(ctx)
	r.checkMigrations(ctx)
	r.checkHooks()
	for _, name := range agentNames {
		if err := checkCurrentLink(filepath.Join(r.dir, name, "root", app, "current")); err != nil {
			r.violation("agent %s at the end: %v", name, err)
		}
	}
	r.checkLogs()
	r.close()
	r.checkBolt()
	r.checkOutside()
}

// checkAcknowledged: what the operator was told is still true.
func (r *run) checkAcknowledged(ctx context.Context) {
	resp, err := r.c.Admin.ListDeployments(ctx, &cutoverv1.ListDeploymentsRequest{Environment: env})
	if err != nil {
		r.violation("ListDeployments: %v", err)
		return
	}
	listed := map[string]bool{}
	for _, d := range resp.GetDeployments() {
		listed[d.GetId()] = true
	}
	for _, d := range r.deps {
		got, err := r.c.Admin.GetDeployment(ctx, &cutoverv1.GetDeploymentRequest{Id: d.id})
		if err != nil {
			r.violation("deployment %s, acknowledged by CreateDeployment, is lost: %v", d.id, err)
			continue
		}
		if !listed[d.id] {
			r.violation("deployment %s is not in ListDeployments", d.id)
		}
		d.last = got
		s := got.GetState()
		for _, a := range slices.Concat(d.acked, d.seen) {
			if rank(s) < rank(a) {
				r.violation("deployment %s went back: %s after %s was acknowledged or seen (seen %v)", d.id, short(s), short(a), shorts(d.seen))
			}
		}
		var final cutoverv1.DeploymentState
		for _, a := range d.seen {
			switch {
			case !a.Final():
			case final == cutoverv1.DeploymentState_DEPLOYMENT_STATE_UNSPECIFIED:
				final = a
			case a != final && !(d.rollback && final == cutoverv1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED && a == cutoverv1.DeploymentState_DEPLOYMENT_STATE_ROLLED_BACK):
				r.violation("deployment %s changed final state: %v", d.id, shorts(d.seen))
			}
		}
	}
}

// expected returns the release every front-end must run, its version
// label, and the release a PREPARED deployment must have staged, from the
// deployments' states in creation order: each DEPLOYED one replaces the
// running release; ROLLED_BACK, FAILED, ABORTED and PREPARED ones leave it.
func (r *run) expected() (release, label, staged string) {
	return expectedOf(r.deps)
}

// expectedOf is expected over deps.
func expectedOf(deps []*dep) (release, label, staged string) {
	for _, d := range deps {
		switch d.last.GetState() {
		case cutoverv1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED:
			release, label = releaseOf(d.last), d.step.Version
		case cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED:
			staged = releaseOf(d.last)
		}
	}
	return release, label, staged
}

// checkFleet: one and the same release on every front-end, the expected one.
func (r *run) checkFleet(ctx context.Context) {
	for _, d := range r.deps {
		if d.stuck || d.last.GetState() == cutoverv1.DeploymentState_DEPLOYMENT_STATE_ACTIVATING {
			r.event("fleet not checked: %s is %s", d.id, short(d.last.GetState()))
			return
		}
	}
	release, label, staged := r.expected()
	r.event("expected on every front-end: release %q (%s), staged %q", release, label, staged)
	err := poll.Until(ctx, settleBound, func() error {
		var problems []string
		resp, err := r.c.Admin.ListAgents(ctx, &cutoverv1.ListAgentsRequest{Environment: env})
		if err != nil {
			return err
		}
		listed := map[string]*cutoverv1.Agent{}
		for _, a := range resp.GetAgents() {
			listed[a.GetName()] = a
		}
		for _, a := range r.c.Agents {
			link := filepath.Join(a.Root, app, "current")
			target, err := os.Readlink(link)
			switch {
			case release == "" && err == nil:
				problems = append(problems, fmt.Sprintf("%s: %s -> %s, want no current (nothing deployed)", a.Name, link, target))
			case release != "" && (err != nil || filepath.Base(target) != release):
				problems = append(problems, fmt.Sprintf("%s: %s -> %q (%v), want release %s", a.Name, link, target, err, release))
			}
			la := listed[a.Name]
			running, stagedIDs := "", []string(nil)
			for _, ap := range la.GetApplications() {
				if ap.GetName() == app {
					running, stagedIDs = ap.GetRunningReleaseId(), ap.GetStagedReleaseIds()
				}
			}
			if running != release {
				problems = append(problems, fmt.Sprintf("%s: ListAgents says it runs %q, want %q", a.Name, running, release))
			}
			if staged != "" && !slices.Contains(stagedIDs, staged) {
				problems = append(problems, fmt.Sprintf("%s: ListAgents says it has %v staged, want %s among them (PREPARED)", a.Name, stagedIDs, staged))
			}
			if release != "" {
				if got, err := localcluster.Answer(a.Port); err != nil || got != label {
					problems = append(problems, fmt.Sprintf("%s: app answers %q (%v), want %q", a.Name, got, err, label))
				}
			}
		}
		if len(problems) > 0 {
			return errors.New(strings.Join(problems, "; "))
		}
		return nil
	})
	if err != nil {
		r.violation("the fleet does not run what the deployments say within %s: %v", settleBound, err)
	}
}

// checkMigrations: each migration ran exactly once or not at all, as the
// deployments' states say. Migration k+1 comes with deployment k and
// writes a row in fault_runs; cutover_schema_migrations is cutover's
// bookkeeping (controlplane/migrate).
func (r *run) checkMigrations(ctx context.Context) {
	if _, err := os.Stat(r.db); errors.Is(err, os.ErrNotExist) {
		r.event("no database file: no migration ran")
		for _, d := range r.deps {
			if s := d.last.GetState(); s == cutoverv1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED {
				r.violation("deployment %s is %s but the database was never created", d.id, short(s))
			}
		}
		return
	}
	db, err := sql.Open("sqlite", "file:"+r.db+"?mode=ro")
	if err != nil {
		r.violation("open %s: %v", r.db, err)
		return
	}
	defer db.Close()
	applied := map[int]string{} // version -> deployment_id
	rows, err := db.QueryContext(ctx, `SELECT version, deployment_id FROM cutover_schema_migrations WHERE application = ?`, app)
	if err != nil {
		if strings.Contains(err.Error(), "no such table") {
			err = nil
		} else {
			r.violation("read cutover_schema_migrations: %v", err)
			return
		}
	}
	for err == nil && rows.Next() {
		var v int
		var id string
		if err := rows.Scan(&v, &id); err != nil {
			r.violation("read cutover_schema_migrations: %v", err)
			return
		}
		applied[v] = id
	}
	if rows != nil {
		rows.Close()
	}
	runs := map[int]int{}
	rows, err = db.QueryContext(ctx, `SELECT version, count(*) FROM fault_runs GROUP BY version`)
	if err == nil {
		for rows.Next() {
			var v, n int
			if err := rows.Scan(&v, &n); err != nil {
				r.violation("read fault_runs: %v", err)
				return
			}
			runs[v] = n
		}
		rows.Close()
	} else if !strings.Contains(err.Error(), "no such table") {
		r.violation("read fault_runs: %v", err)
		return
	}
	r.event("migrations applied: %v; fault_runs: %v", applied, runs)
	byID := map[string]*dep{}
	for _, d := range r.deps {
		byID[d.id] = d
	}
	for v, n := range runs {
		if n != 1 {
			r.violation("migration %d ran %d times (fault_runs)", v, n)
		}
		if _, ok := applied[v]; !ok {
			r.violation("migration %d ran (fault_runs) but is not in cutover_schema_migrations", v)
		}
	}
	for v, id := range applied {
		if v > 1 && runs[v] == 0 {
			r.violation("migration %d is in cutover_schema_migrations (by %s) but never ran (fault_runs)", v, id)
		}
		d := byID[id]
		if d == nil {
			r.violation("migration %d was applied by %s, which the run never acknowledged", v, id)
			continue
		}
		s := d.last.GetState()
		stage2 := s == cutoverv1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED || s == cutoverv1.DeploymentState_DEPLOYMENT_STATE_ROLLED_BACK ||
			s == cutoverv1.DeploymentState_DEPLOYMENT_STATE_ACTIVATING ||
			s == cutoverv1.DeploymentState_DEPLOYMENT_STATE_FAILED && d.last.GetActivateTime() != nil
		if !stage2 {
			r.violation("migration %d was applied by %s, which is %s (stage 2 never ran)", v, id, short(s))
		}
		if v > d.index+1 {
			r.violation("migration %d was applied by %s, which brings migrations up to %d only", v, id, d.index+1)
		}
	}
	for _, d := range r.deps {
		s := d.last.GetState()
		if s != cutoverv1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED && s != cutoverv1.DeploymentState_DEPLOYMENT_STATE_ROLLED_BACK {
			continue
		}
		if s == cutoverv1.DeploymentState_DEPLOYMENT_STATE_ROLLED_BACK && d.last.GetActivateTime() == nil {
			continue
		}
		for v := 1; v <= d.index+1; v++ {
			if _, ok := applied[v]; !ok {
				r.violation("deployment %s is %s but migration %d is not applied", d.id, short(s), v)
			}
		}
	}
}

// checkHooks: each front-end ran the before_activate hook at most once per
// release it activated (a line of the log is the hook, the release and the
// directory it ran in, which is on one agent).
func (r *run) checkHooks() {
	b, err := os.ReadFile(r.hookLog)
	if err != nil {
		if !os.IsNotExist(err) {
			r.violation("read the hook log: %v", err)
		}
		return
	}
	count := map[string]int{}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		count[l]++
	}
	// A rollback asked again is a new command: it may run the hooks of
	// the release it goes back to once more.
	allowed := map[string]int{}
	for i, d := range r.deps {
		if d.rollbackRetries > 0 {
			prev, _, _ := expectedOf(r.deps[:i])
			allowed[prev] += d.rollbackRetries
		}
	}
	for l, n := range count {
		extra := 0
		if f := strings.Fields(l); len(f) == 3 {
			extra = allowed[f[1]]
		}
		if n > 1+extra {
			r.violation("hook ran %d times on one front-end for one release: %q", n, l)
		}
	}
}

// checkLogs: no panic and no data race in any process's log.
func (r *run) checkLogs() {
	for _, p := range r.c.Procs() {
		b, err := os.ReadFile(p.Log)
		if err != nil {
			r.violation("read %s: %v", p.Log, err)
			continue
		}
		for _, bad := range []string{"panic:", "WARNING: DATA RACE", "fatal error:"} {
			if i := strings.Index(string(b), bad); i >= 0 {
				end := min(len(b), i+1500)
				r.violation("%s's log holds %q:\n%s", p.Name, bad, b[i:end])
			}
		}
	}
}

// checkBolt runs bbolt's consistency check on each bbolt file, the
// processes stopped, through the package that owns it.
func (r *run) checkBolt() {
	if err := ctlstore.Check(filepath.Join(r.dir, "controller")); err != nil {
		r.violation("controller store: %v", err)
	}
	for _, a := range r.c.Agents {
		if err := agentstore.Check(a.DataDir); err != nil {
			r.violation("agent %s store: %v", a.Name, err)
		}
	}
}

// checkOutside: nothing written outside the cluster's roots: the top of
// the cluster directory holds only what the cluster puts there, each
// agent's directory only its token, data dir and root, the canary is
// untouched and the processes' working directory (this package's) is
// unchanged.
func (r *run) checkOutside() {
	allowed := map[string]bool{"controller": true, "controller.log": true, "src": true, "canary": true, "hooks.log": true,
		"db": true} // the database's directory (its files, the lock file beside it: controlplane/migrate/lock.go)
	// The database's own files, and the lock file cutover's migrations take beside it (controlplane/migrate/lock.go).
	for _, suffix := range []string{"", "-wal", "-shm", "-journal", ".cutover-lock"} {
		allowed[env+".db"+suffix] = true
	}
	for _, name := range agentNames {
		allowed[name], allowed[name+".log"] = true, true
	}
	top, err := listDir(r.dir)
	if err != nil {
		r.violation("list %s: %v", r.dir, err)
	}
	for _, n := range top {
		if !allowed[n] {
			r.violation("%s was written at the top of the cluster directory %s", n, r.dir)
		}
	}
	for _, name := range agentNames {
		in, _ := listDir(filepath.Join(r.dir, name))
		for _, n := range in {
			if n != "join.token" && n != "data" && n != "root" && n != "lost+found" {
				r.violation("%s was written in agent %s's directory, outside its data dir and root", n, name)
			}
		}
	}
	canary, _ := listDir(filepath.Join(r.dir, "canary"))
	if b, err := os.ReadFile(filepath.Join(r.dir, "canary", "canary")); err != nil || string(b) != "canary\n" || len(canary) != 1 {
		r.violation("the canary directory changed: %v %q %v", canary, b, err)
	}
	if now, err := listDir("."); err != nil || !slices.Equal(now, r.listing) {
		r.violation("the processes' working directory changed: %v, was %v (%v)", now, r.listing, err)
	}
}

// releaseOf is the release id of a deployment's only application.
func releaseOf(d *cutoverv1.Deployment) string {
	if apps := d.GetApplications(); len(apps) == 1 {
		return apps[0].GetReleaseId()
	}
	return ""
}

// shorts renders states without their prefix.
func shorts(ss []cutoverv1.DeploymentState) []string {
	var out []string
	for _, s := range ss {
		out = append(out, short(s))
	}
	return out
}
