// Command cutover-demo shows a two-stage deployment on one machine, with
// nothing but Go, and the trust that guards it: it starts a controller in
// a temporary directory on free loopback ports (TLS only; the demo shows
// the CA and the bootstrap admin token it created, a call without a token
// refused, and creates a deployer's and a viewer's token with cutoverctl
// token create), three agents enrolled with a join token each (cutoverctl
// agent token create; agents list shows their identities and certificate
// expiry), a SQLite database and a deployment window open now (env get
// shows it). Acting as the deployer, it deploys examples/hello v1 (without
// its migration), prepares v2, which adds the migration (all three
// front-ends still answer v1, the script and the expiry are shown and the
// table does not exist yet), shows the viewer refused continue with
// PERMISSION_DENIED and the deployment unchanged, continues (the table
// exists, all answer v2, the swap spread is shown, the hooks ran around
// the swap, the package step produced a file that it downloads), rolls v2
// back (all answer v1 again, v1's hooks ran; the database is not rolled
// back), shows the deployment's audit trail and verifies the audit chain,
// and stops everything. The source lives under the
// controller's --source-root. Every step runs the real cutoverctl and
// prints its command line, so the demo also teaches the commands. The
// controller serves its web console too (--console-listen): the demo prints
// its URL and the file that holds demo-deployer's token to log in with (no
// token on screen); with -hold it keeps everything running at the end
// until Ctrl-C.
//
// With -ha (make demo-ha) it shows several controllers instead (ha.go):
// three etcd members, three controllers on them, three agents given every
// controller's address; it deploys v1, then kills the leader while v2's
// stage 2 waits in a hook, and shows another controller elected and
// finishing the deployment, every front-end on v2.
//
//	make demo   # = go build -o bin/ ./cmd/... && bin/cutover-demo -bin bin
//	make demo-ha  # = make etcd, the same build, then bin/cutover-demo -bin bin -ha
package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver, to look at the demo database

	"github.com/cutover-dev/cutover/internal/hacluster"
	"github.com/cutover-dev/cutover/internal/localcluster"
	"github.com/cutover-dev/cutover/pkg/poll"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

func main() {
	binDir := flag.String("bin", "bin", "directory with cutover-controller, cutover-agent and cutoverctl")
	example := flag.String("app", filepath.Join("examples", "hello"), "source directory of the example application")
	keep := flag.Bool("keep", false, "keep the temporary directory (data, roots, logs) instead of removing it")
	hold := flag.Bool("hold", false, "at the end, keep the controller, the agents and the web console running until Ctrl-C")
	ha := flag.Bool("ha", false, "instead: three etcd members, three controllers, three agents; the leader is killed in stage 2 (make demo-ha)")
	ttl := flag.Duration("leader-ttl", 5*time.Second, "with -ha: the controllers' --leader-ttl")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	d := &demo{out: os.Stdout, keep: *keep, hold: *hold}
	if *ha {
		d.haTTL = *ttl
	}
	if err := d.run(ctx, *binDir, *example); err != nil {
		fmt.Fprintf(os.Stdout, "\nThe demo failed: %v\n", err)
		os.Exit(1)
	}
}

// demo is one run: where it is and what it started.
type demo struct {
	out     io.Writer
	keep    bool
	hold    bool
	binDir  string
	dir     string
	src     string
	db      string // the environment's SQLite database
	hookLog string // the file the demo's hooks append to
	cluster *localcluster.Cluster
	ha      *hacluster.Cluster // with -ha: the etcd members and the controllers; cluster is its first
	haTTL   time.Duration      // with -ha: the --leader-ttl; 0 without -ha
	ctlAddr string             // the controller cutoverctl talks to, when not cluster.Addr
	step    int
	// token is the token file cutoverctl uses (CUTOVER_TOKEN_FILE): the
	// bootstrap admin's, then the deployer's.
	token                      string
	deployerToken, viewerToken string
	// consoleURL is the web console's address (--console-listen).
	consoleURL string
}

// say prints a numbered step in plain words.
func (d *demo) say(format string, args ...any) {
	d.step++
	fmt.Fprintf(d.out, "\n%d. %s\n", d.step, fmt.Sprintf(format, args...))
}

func (d *demo) run(ctx context.Context, binDir, example string) (err error) {
	if d.binDir, err = filepath.Abs(binDir); err != nil {
		return err
	}
	for _, b := range []string{"cutover-controller", "cutover-agent", "cutoverctl"} {
		if _, err := os.Stat(filepath.Join(d.binDir, b)); err != nil {
			return fmt.Errorf("%s is missing in %s: build first with make build (%w)", b, d.binDir, err)
		}
	}
	tmp, err := os.MkdirTemp("", "cutover-demo-")
	if err != nil {
		return err
	}
	if d.dir, err = filepath.EvalSymlinks(tmp); err != nil {
		return err
	}
	defer d.cleanup(&err)
	if d.haTTL > 0 {
		return d.runHA(ctx, example, d.haTTL)
	}

	sourceRoot := filepath.Join(d.dir, "sources")
	d.src = filepath.Join(sourceRoot, "hello")
	d.db = filepath.Join(d.dir, "demo.db")
	d.say("Copying %s to %s, with VERSION v1 and without %s:\n   v1 predates the table visits; v2 brings the migration that creates it.\n"+
		"   The controller builds only sources under its --source-root directories: %s will be one.", example, d.src, visitsMigration, sourceRoot)
	if err := localcluster.CopyApp(example, d.src, "v1"); err != nil {
		return err
	}
	migration, err := os.ReadFile(filepath.Join(d.src, visitsMigration))
	if err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(d.src, visitsMigration)); err != nil {
		return err
	}
	d.hookLog = filepath.Join(d.dir, "hooks.log")
	extra := demoSpec(d.hookLog)
	fmt.Fprintf(d.out, "   Its cutover.yaml gets hooks, run by the agents around each swap, and a package step, run by the controller\n   after an activation that changed VERSION:\n%s", indent(extra, "     "))
	if err := appendFile(filepath.Join(d.src, "cutover.yaml"), extra); err != nil {
		return err
	}

	d.say("Starting a controller (state in %s):\n   $ cutover-controller --data-dir %s --listen 127.0.0.1:PORT --source-root %s",
		filepath.Join(d.dir, "controller"), filepath.Join(d.dir, "controller"), sourceRoot)
	consolePort, err := localcluster.FreePort()
	if err != nil {
		return err
	}
	consoleAddr := fmt.Sprintf("127.0.0.1:%d", consolePort)
	d.consoleURL = "https://" + consoleAddr + "/"
	d.cluster, err = localcluster.Start(ctx, localcluster.Config{BinDir: d.binDir, Dir: d.dir,
		ControllerArgs: []string{"--source-root", sourceRoot, "--console-listen", consoleAddr}})
	if err != nil {
		return err
	}
	fmt.Fprintf(d.out, "   It listens on %s, and serves its web console on %s (--console-listen %s).\n", d.cluster.Addr, d.consoleURL, consoleAddr)
	if err := d.showControllerTrust(); err != nil {
		return err
	}

	d.say("Without a token, the controller answers nothing but its health service and server reflection:")
	if err := d.showAnonymousRefused(ctx); err != nil {
		return err
	}

	d.say("With the bootstrap admin token, creating the named tokens the demo acts with: demo-deployer, a deployer\n" +
		"   on the environment demo, and demo-viewer, who may only read. token create prints the token alone:")
	if err := d.createOperatorTokens(ctx); err != nil {
		return err
	}
	d.showConsole()

	window := demoWindow(time.Now())
	d.say("Creating the environment demo, which deploys in two stages, with a SQLite database, and runs stage 2 only inside the deployment window %q (open now).", window)
	if _, err := d.runCtl(ctx, false, "env", "create", "demo", "--two-stage", "--db-driver", "sqlite", "--db-dsn", d.db, "--window", window); err != nil {
		return err
	}
	fmt.Fprintf(d.out, "   Whether the window is open now, and when the next one opens:\n")
	if _, err := d.ctl(ctx, "env", "get", "demo"); err != nil {
		return err
	}

	d.say("Enrolling three agents (front-ends fe-1, fe-2, fe-3) in the environment demo. Each gets a join token of its\n" +
		"   own, for its name only, once, within 10 minutes:")
	if err := d.enrollAgents(ctx, "fe-1", "fe-2", "fe-3"); err != nil {
		return err
	}

	if err := d.deployV1(ctx); err != nil {
		return err
	}
	v1Hooks, err := d.hookLines()
	if err != nil {
		return err
	}

	d.say("A new version: writing v2 into %s, and adding %s.", filepath.Join(d.src, "VERSION"), visitsMigration)
	if err := localcluster.WriteVersion(d.src, "v2"); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(d.src, visitsMigration), migration, 0o644); err != nil {
		return err
	}
	id2, err := d.create(ctx, "hello=v2")
	if err != nil {
		return err
	}

	d.say("Stage 1: prepare. The controller builds v2, generates its SQL script, and every agent stages it;\n   nothing running changes, and nothing is written to the database.")
	if _, err := d.ctl(ctx, "deploy", "prepare", id2, "--wait"); err != nil {
		return err
	}
	d.say("The prepared deployment waits for continue until it expires (prepared_ttl, 96h by default; deploy extend renews it):")
	if err := d.expiry(ctx, id2); err != nil {
		return err
	}
	d.say("The SQL script that continue will run:")
	if _, err := d.ctl(ctx, "deploy", "plan", id2); err != nil {
		return err
	}
	if err := d.showVisits(false); err != nil {
		return err
	}
	d.say("Each agent runs v1 and has v2 staged:")
	if _, err := d.ctl(ctx, "agents", "list", "--env", "demo"); err != nil {
		return err
	}
	if err := d.ask("v1"); err != nil {
		return err
	}

	d.say("demo-viewer may read, not deploy: its continue of %s is refused, before anything happens.", id2)
	if err := d.showViewerRefused(ctx, id2, cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED); err != nil {
		return err
	}

	d.say("Stage 2: continue. The controller runs the SQL script, then every agent starts v2 beside v1 on the socket it\n" +
		"   holds for hello (run.listen); once every v2 is healthy, every v1 is told to stop. Meanwhile clients send requests\n" +
		"   to every front-end every 5 ms:")
	tr := d.startTraffic()
	if _, err := d.ctl(ctx, "deploy", "continue", id2, "--wait"); err != nil {
		tr.Stop()
		return err
	}
	fmt.Fprintf(d.out, "   During the continue: %s.\n", trafficSummary(tr.Stop()))
	if err := d.showVisits(true); err != nil {
		return err
	}
	if err := d.ask("v2"); err != nil {
		return err
	}
	d.say("The hooks ran around the swap: before_activate and after_activate once (on fe-1), validate on each front-end:")
	seen, err := d.showHooks(len(v1Hooks))
	if err != nil {
		return err
	}
	d.say("The package step ran on the controller (VERSION, in when_changed, differs from v1); download what it produced:")
	if err := d.showPackage(ctx, id2); err != nil {
		return err
	}

	d.say("How long stage 2 took:")
	if err := d.timings(ctx, id2); err != nil {
		return err
	}
	d.say("v2 turns out wrong: roll it back. Every agent swaps back to v1 (beside v2, as above); the database is not rolled back.")
	tr = d.startTraffic()
	if _, err := d.ctl(ctx, "deploy", "rollback", id2, "--wait"); err != nil {
		tr.Stop()
		return err
	}
	fmt.Fprintf(d.out, "   During the rollback: %s.\n", trafficSummary(tr.Stop()))
	if err := d.ask("v1"); err != nil {
		return err
	}
	if err := d.showVisits(true); err != nil {
		return err
	}
	fmt.Fprintf(d.out, "   Going back is an activation of v1: v1's hooks ran around the swap back:\n")
	if _, err := d.showHooks(seen); err != nil {
		return err
	}
	d.say("The audit trail of %s: who did what to it, the viewer's refusal included, each entry chained to the one\n"+
		"   before by its hash; audit verify checks the whole chain:", id2)
	if err := d.showAudit(ctx, id2); err != nil {
		return err
	}
	if err := d.showBootstrapRevoke(); err != nil {
		return err
	}
	if d.hold {
		d.say("The demo holds: everything keeps running until you press Ctrl-C.")
		d.showConsole()
		<-ctx.Done()
	}
	d.say("Stopping every process the demo started.")
	return nil
}

// deployV1 registers the application (as the admin), then, as the
// deployer, deploys v1 in one go and checks that every front-end answers v1.
func (d *demo) deployV1(ctx context.Context) error {
	d.say("Registering the application's source directory (under the --source-root; any other is refused).")
	if _, err := d.ctl(ctx, "app", "register", d.src); err != nil {
		return err
	}
	d.actAsDeployer()

	d.say("Deploying hello v1 in one go (deploy start runs both stages back to back). On a fresh machine, the\n" +
		"   controller's first go build of hello also compiles Go's standard library: it may take a minute.")
	id1, err := d.create(ctx, "hello=v1")
	if err != nil {
		return err
	}
	if _, err := d.ctl(ctx, "deploy", "start", id1, "--wait"); err != nil {
		return err
	}
	return d.ask("v1")
}

// showConsole says where the web console is and how to log in, without
// printing a token: the demo shows no secret.
func (d *demo) showConsole() {
	fmt.Fprintf(d.out, "   The web console: %s\n"+
		"   It is served with the controller's certificate, issued by its own CA (%s): a browser that does not\n"+
		"   trust that CA warns first. Log in with an operator token, for example demo-deployer's:\n"+
		"   $ cat %s\n", d.consoleURL, d.cluster.CAFile, d.deployerToken)
	if !d.hold {
		fmt.Fprintf(d.out, "   (The demo stops everything at its end; run it with -hold to keep the console up: bin/cutover-demo -bin bin -hold.)\n")
	}
}

// create plans a deployment of app (NAME=LABEL) to demo and returns its id.
func (d *demo) create(ctx context.Context, app string) (string, error) {
	out, err := d.ctl(ctx, "deploy", "create", "--env", "demo", "--app", app)
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "ID" {
			return f[1], nil
		}
	}
	return "", fmt.Errorf("no deployment id in the output of deploy create:\n%s", out)
}

// ask asks each front-end's hello over HTTP for its version and fails
// unless every one answers want (within a few seconds).
func (d *demo) ask(want string) error {
	fmt.Fprintf(d.out, "   Asking each front-end's hello over HTTP:\n")
	for _, a := range d.cluster.Agents {
		var got string
		err := poll.Until(context.Background(), 10*time.Second, func() error {
			var err error
			got, err = localcluster.Answer(a.Port)
			if err == nil && got != want {
				err = fmt.Errorf("answers %q", got)
			}
			return err
		})
		if err != nil {
			return fmt.Errorf("%s on 127.0.0.1:%d should answer %s: %w", a.Name, a.Port, want, err)
		}
		fmt.Fprintf(d.out, "     %s (127.0.0.1:%d) answers %s\n", a.Name, a.Port, got)
	}
	return nil
}

// timings prints stage 2's duration and the activation spread of id.
func (d *demo) timings(ctx context.Context, id string) error {
	out, err := d.runCtl(ctx, false, "-o", "json", "deploy", "get", id)
	if err != nil {
		return err
	}
	var dep cutoverv1.Deployment
	if err := protojson.Unmarshal([]byte(out), &dep); err != nil {
		return fmt.Errorf("read deploy get -o json: %w", err)
	}
	if dep.GetActivateTime() == nil || dep.GetFinishTime() == nil {
		return fmt.Errorf("deployment %s has no activate_time or finish_time", id)
	}
	stage2 := dep.GetFinishTime().AsTime().Sub(dep.GetActivateTime().AsTime())
	fmt.Fprintf(d.out, "   Stage 2 (activate_time to finish_time) took %s: SQL %s (sql_duration), swap %s (swap_duration).\n",
		stage2.Round(time.Millisecond), dep.GetSqlDuration().AsDuration().Round(time.Microsecond), dep.GetSwapDuration().AsDuration().Round(time.Microsecond))
	if s := dep.GetActivationSpread(); s != nil {
		fmt.Fprintf(d.out, "   The first and the last front-end switched %s apart (activation_spread: when each told v1 to stop).\n", s.AsDuration().Round(time.Microsecond))
	}
	for _, a := range dep.GetAgents() {
		if o := a.GetOverlap(); o != nil {
			fmt.Fprintf(d.out, "     %s: v1 and v2 served side by side for %s (overlap)\n", a.GetName(), o.AsDuration().Round(time.Millisecond))
		}
	}
	if p := dep.GetStage2Prediction(); p.GetTotal() != nil && stage2 > 0 {
		var parts []string
		for _, part := range p.GetParts() {
			parts = append(parts, part.GetName()+" "+part.GetDuration().AsDuration().Round(time.Millisecond).String())
		}
		predicted := p.GetTotal().AsDuration()
		fmt.Fprintf(d.out, "   Predicted before the window: %s (%s); predicted ÷ actual = %.2f.\n",
			predicted.Round(time.Millisecond), strings.Join(parts, ", "), predicted.Seconds()/stage2.Seconds())
	}
	return nil
}

// visitsMigration is examples/hello's migration, which v2 brings.
var visitsMigration = filepath.Join("db", "migrations", "0001_create_visits.up.sql")

// showVisits says whether the demo database has the table visits, and
// fails unless that is want.
func (d *demo) showVisits(want bool) error {
	tables, err := sqliteTables(d.db)
	if err != nil {
		return err
	}
	has := slices.Contains(tables, "visits")
	shown := strings.Join(tables, ", ")
	if shown == "" {
		shown = "none"
	}
	if has {
		fmt.Fprintf(d.out, "   The database %s now has the table visits (its tables: %s).\n", d.db, shown)
	} else {
		fmt.Fprintf(d.out, "   The database %s has no table visits yet (its tables: %s): prepare wrote nothing to it.\n", d.db, shown)
	}
	if has != want {
		return fmt.Errorf("the table visits should exist: %v, but it does: %v", want, has)
	}
	return nil
}

// sqliteTables lists the tables of the SQLite database at path, opened
// read-only; none when the file does not exist.
func sqliteTables(path string) ([]string, error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		return nil, err
	}
	defer db.Close()
	rows, err := db.Query(`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("read the tables of %s: %w", path, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, err
		}
		out = append(out, name)
	}
	return out, rows.Err()
}

// demoWindow is a deployment window open at now: every day from the start
// of now's hour (UTC) to two hours later (across midnight when late).
func demoWindow(now time.Time) string {
	h := now.UTC().Hour()
	return fmt.Sprintf("Mon-Sun %02d:00-%02d:00 UTC", h, (h+2)%24)
}

// expiry prints when prepared deployment id expires.
func (d *demo) expiry(ctx context.Context, id string) error {
	out, err := d.runCtl(ctx, false, "-o", "json", "deploy", "get", id)
	if err != nil {
		return err
	}
	var dep cutoverv1.Deployment
	if err := protojson.Unmarshal([]byte(out), &dep); err != nil {
		return fmt.Errorf("read deploy get -o json: %w", err)
	}
	if dep.GetExpireTime() == nil {
		return fmt.Errorf("prepared deployment %s has no expire_time", id)
	}
	fmt.Fprintf(d.out, "   %s is %s and expires at %s (expire_time); continue it before, or run: cutoverctl deploy extend %s --by 24h\n",
		id, strings.TrimPrefix(dep.GetState().String(), "DEPLOYMENT_STATE_"), dep.GetExpireTime().AsTime().UTC().Format(time.RFC3339), id)
	return nil
}
