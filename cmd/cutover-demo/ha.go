package main

// This file is the demo of several controllers (make demo-ha): three etcd
// members, three controllers, three agents; the leader is killed in
// stage 2 and another finishes the deployment.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cutover-dev/cutover/internal/hacluster"
	"github.com/cutover-dev/cutover/internal/localcluster"
	"github.com/cutover-dev/cutover/pkg/poll"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// runHA is the demo of issue 16: the leader dies during stage 2, and a
// follower, elected through etcd, finishes the deployment.
func (d *demo) runHA(ctx context.Context, example string, ttl time.Duration) error {
	sourceRoot := filepath.Join(d.dir, "sources")
	d.src = filepath.Join(sourceRoot, "hello")
	d.say("Copying %s to %s, with VERSION v1.", example, d.src)
	if err := localcluster.CopyApp(example, d.src, "v1"); err != nil {
		return err
	}

	d.say("Starting three etcd members (%s/etcd): etcd keeps working while two of the three run.\n"+
		"   Then three controllers that keep their state in it, the first of which creates the CA and the bootstrap\n"+
		"   token; the other two are given that CA, so that agents and operators trust any of them:\n"+
		"   $ cutover-controller --data-dir %s/controller --listen 127.0.0.1:PORT --source-root %s \\\n"+
		"       --store etcd --etcd-endpoints URL,URL,URL --leader-ttl %s\n"+
		"   $ cutover-controller --data-dir %s/controller-2 … --tls-ca-cert %s/controller/tls/ca.crt --tls-ca-key …/ca.key\n"+
		"   They elect a leader through etcd: only the leader runs deployments and agents' sessions. Its etcd lease\n"+
		"   lives --leader-ttl (%s here; 10s by default): a leader that dies is replaced within about that time.",
		d.dir, d.dir, sourceRoot, ttl, d.dir, d.dir, ttl)
	hc, err := hacluster.Start(ctx, hacluster.Config{BinDir: d.binDir, Dir: d.dir, LeaderTTL: ttl,
		ControllerArgs: []string{"--source-root", sourceRoot}})
	d.ha, d.cluster = hc, hc.Cluster
	if err != nil {
		return err
	}
	lead, epoch, err := hc.WaitLeader(ctx, localcluster.StartTimeout)
	if err != nil {
		return err
	}
	for _, addr := range hc.Addrs {
		role := "follower"
		if addr == lead {
			role = fmt.Sprintf("LEADER (epoch %d: the revision of its election key in etcd)", epoch)
		}
		fmt.Fprintf(d.out, "     %-13s %s  %s\n", hc.Proc(addr).Name, addr, role)
	}
	for _, addr := range hc.Addrs {
		if addr != lead {
			d.ctlAddr = addr
		}
	}
	fmt.Fprintf(d.out, "   cutoverctl talks to %s, a follower: a follower forwards every operator's call to the leader.\n"+
		"   $ export CUTOVER_CONTROLLER=%s CUTOVER_CA_FILE=%s CUTOVER_TOKEN_FILE=%s\n",
		hc.Proc(d.ctlAddr).Name, d.ctlAddr, hc.CAFile, hc.AdminTokenFile)
	d.token = hc.AdminTokenFile

	d.say("As the bootstrap admin: a deployer's token, and the environment demo (two stages, a SQLite database).")
	if err := d.createOperatorTokens(ctx); err != nil {
		return err
	}
	if _, err := d.runCtl(ctx, false, "env", "create", "demo", "--two-stage", "--db-driver", "sqlite", "--db-dsn", filepath.Join(d.dir, "demo.db")); err != nil {
		return err
	}
	d.say("Enrolling three agents. Each is given every controller's address; it connects to the leader (a follower\n" +
		"   answers with the leader's address) and follows a new one:")
	if err := d.enrollAgents(ctx, "fe-1", "fe-2", "fe-3"); err != nil {
		return err
	}
	if err := d.deployV1(ctx); err != nil {
		return err
	}

	hold := filepath.Join(d.dir, "hold")
	d.say("v2, with a before_activate hook that waits until the file %s exists: it holds stage 2 open\n"+
		"   so that the demo can kill the leader in the middle of it. Stage 1, prepare:", hold)
	if err := writeHoldHook(d.src, "v2", hold); err != nil {
		return err
	}
	id2, err := d.create(ctx, "hello=v2")
	if err != nil {
		return err
	}
	if _, err := d.ctl(ctx, "deploy", "prepare", id2, "--wait"); err != nil {
		return err
	}
	d.say("Stage 2: continue. The leader runs the SQL script, then tells the agents to run the hook and swap:")
	if _, err := d.runCtl(ctx, false, "deploy", "continue", id2); err != nil {
		return err
	}
	if err := d.waitHeld(ctx, id2); err != nil {
		return err
	}

	d.say("Killing the leader, %s (SIGKILL), as a machine that dies would, while stage 2 waits in the hook.", hc.Proc(lead).Name)
	f, err := hc.KillLeader(ctx, "demo", 3*ttl+30*time.Second)
	if err != nil {
		return err
	}
	fmt.Fprintf(d.out, "   %s's lease expired in etcd; %s won the election after %s (epoch %d > %d: agents now refuse\n"+
		"   the old leader's commands). It serves, with every agent connected to it, %s after the kill.\n",
		hc.Proc(f.Old).Name, hc.Proc(f.New).Name, f.Elected.Round(time.Millisecond), f.NewEpoch, f.OldEpoch, f.Took.Round(time.Millisecond))

	d.say("The new leader resumed stage 2 from etcd. Releasing the hook; watching the deployment end (through the follower):")
	if err := os.WriteFile(hold, nil, 0o644); err != nil {
		return err
	}
	if _, err := d.ctl(ctx, "deploy", "watch", id2); err != nil {
		return err
	}
	if err := d.ask("v2"); err != nil {
		return err
	}

	d.say("Starting %s again: it rejoins as a follower; %s still leads.", hc.Proc(f.Old).Name, hc.Proc(f.New).Name)
	if err := hc.Restart(ctx, f.Old); err != nil {
		return err
	}
	if now, _, err := hc.Leader(ctx); err != nil || now != f.New {
		return fmt.Errorf("after %s started again, the leader is %q (%v); want %s", f.Old, now, err, f.New)
	}
	d.say("Stopping every process the demo started.")
	return nil
}

// writeHoldHook sets the VERSION of the source in dir and gives it a
// before_activate hook that waits until the file hold exists.
func writeHoldHook(dir, version, hold string) error {
	if err := localcluster.WriteVersion(dir, version); err != nil {
		return err
	}
	return appendFile(filepath.Join(dir, "cutover.yaml"),
		fmt.Sprintf("hooks:\n  before_activate: [{command: 'while [ ! -e %s ]; do sleep 0.1; done', on: once, timeout: 5m}]\n", hold))
}

// waitHeld waits until deployment id is in stage 2's before_activate
// step, and says so.
func (d *demo) waitHeld(ctx context.Context, id string) error {
	admin, closeConn, err := d.ha.Client(d.ctlAddr)
	if err != nil {
		return err
	}
	defer closeConn()
	var dep *cutoverv1.Deployment
	err = poll.Until(ctx, 2*time.Minute, func() error {
		if dep, err = admin.GetDeployment(ctx, &cutoverv1.GetDeploymentRequest{Id: id}); err != nil {
			return err
		}
		if !strings.Contains(strings.ToLower(dep.GetStep()), "before") {
			return fmt.Errorf("%s is %s, step %q", id, dep.GetState(), dep.GetStep())
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("stage 2 should reach the before_activate hook: %w", err)
	}
	fmt.Fprintf(d.out, "   %s is %s, step %q: the hook holds it.\n", id, strings.TrimPrefix(dep.GetState().String(), "DEPLOYMENT_STATE_"), dep.GetStep())
	return nil
}
