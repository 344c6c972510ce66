package main

// This file shows cutover's trust steps: the controller's CA and bootstrap
// token, named operator tokens with roles, agents enrolled with join
// tokens, a refusal, and the audit trail.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/cutover-dev/cutover/pkg/token"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// noToken, as a token file, runs cutoverctl without any token.
const noToken = "-"

// showControllerTrust prints what the controller created on its first
// start, checks their modes, and says how cutoverctl finds them.
func (d *demo) showControllerTrust() error {
	c := d.cluster
	fmt.Fprintf(d.out, "   It serves TLS 1.3 only. On its first start it created, in its data dir:\n")
	for _, f := range []struct{ path, what string }{
		{c.CAFile, "its CA certificate: cutoverctl, grpcurl and agents check the controller's certificate with it"},
		{filepath.Join(filepath.Dir(c.CAFile), "ca.key"), "the CA's key, which signs the controller's and the agents' certificates"},
		{c.AdminTokenFile, "a bootstrap admin token, to create the named tokens with"},
	} {
		info, err := os.Stat(f.path)
		if err != nil {
			return fmt.Errorf("the controller's first start should have written %s: %w", f.path, err)
		}
		fmt.Fprintf(d.out, "     %-4o %s\n          %s\n", info.Mode().Perm(), f.path, f.what)
	}
	fmt.Fprintf(d.out, "   cutoverctl finds the controller, its CA and a token through (flags --controller, --ca-file, --token-file,\n"+
		"   or the config file that cutoverctl login writes, do the same):\n"+
		"   $ export CUTOVER_CONTROLLER=%s CUTOVER_CA_FILE=%s CUTOVER_TOKEN_FILE=%s\n", c.Addr, c.CAFile, c.AdminTokenFile)
	d.token = c.AdminTokenFile
	return nil
}

// showAnonymousRefused runs a read without any token: the controller
// answers UNAUTHENTICATED.
func (d *demo) showAnonymousRefused(ctx context.Context) error {
	out, err := d.runCtlAs(ctx, noToken, true, "env", "list")
	if err == nil || !strings.Contains(out, "Unauthenticated") {
		return fmt.Errorf("env list without a token should be refused with Unauthenticated, got %v:\n%s", err, out)
	}
	fmt.Fprintf(d.out, "   Refused with UNAUTHENTICATED. Only the health service and server reflection are open to anyone.\n")
	return nil
}

// createToken creates an operator token with cutoverctl token create args
// (as the bootstrap admin), writes it to file (0600) and prints its id
// only.
func (d *demo) createToken(ctx context.Context, file string, args ...string) error {
	return d.createSecret(ctx, file, append([]string{"token", "create"}, args...)...)
}

// createSecret runs cutoverctl args, which prints a token alone, writes
// the token to file (0600) as `> file` under umask 077 would, and prints
// it shortened to its public id.
func (d *demo) createSecret(ctx context.Context, file string, args ...string) error {
	out, err := d.runCtlShown(ctx, d.token, quoteArgs(args)+" > "+file, args...)
	if err != nil {
		return err
	}
	secret := strings.TrimSpace(out)
	id := token.ID(secret)
	if id == "" {
		return fmt.Errorf("cutoverctl %s printed no token", quoteArgs(args))
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(file, []byte(secret+"\n"), 0o600); err != nil {
		return err
	}
	prefix, _, _ := strings.Cut(secret, ".")
	fmt.Fprintf(d.out, "     %s.%s.… (id %s; the secret stays in the file, mode 0600)\n", prefix, id, id)
	return nil
}

// createOperatorTokens creates the deployer and the viewer the demo acts
// as, and lists the tokens.
func (d *demo) createOperatorTokens(ctx context.Context) error {
	d.deployerToken = filepath.Join(d.dir, "deployer.token")
	d.viewerToken = filepath.Join(d.dir, "viewer.token")
	if err := d.createToken(ctx, d.deployerToken, "--subject", "demo-deployer", "--role", "deployer", "--environment", "demo", "--ttl", "24h"); err != nil {
		return err
	}
	if err := d.createToken(ctx, d.viewerToken, "--subject", "demo-viewer", "--role", "viewer", "--ttl", "24h"); err != nil {
		return err
	}
	fmt.Fprintf(d.out, "   The controller keeps only a hash of each: a token is shown once. Every token, without its secret:\n")
	_, err := d.ctl(ctx, "token", "list")
	return err
}

// enrollAgents creates a join token per agent with cutoverctl and starts
// the agents with --join-token-file; they enroll and get a certificate.
func (d *demo) enrollAgents(ctx context.Context, names ...string) error {
	for _, name := range names {
		if err := d.createSecret(ctx, d.cluster.JoinTokenFile(name),
			"agent", "token", "create", "--environment", "demo", "--name", name, "--ttl", "10m"); err != nil {
			return err
		}
	}
	fmt.Fprintf(d.out, "   Each join token holds the hash of the controller's CA: the agent checks the controller with it before it\n"+
		"   sends the token, so it needs no CA file. Each agent starts with its token:\n"+
		"   $ cutover-agent --controller %s --environment demo --name fe-1 --join-token-file %s \\\n"+
		"       --data-dir %s --root %s --env PORT=…\n",
		cmp.Or(d.cluster.AgentControllerAddr, d.cluster.Addr), d.cluster.JoinTokenFile("fe-1"), filepath.Join(d.dir, "fe-1", "data"), filepath.Join(d.dir, "fe-1", "root"))
	if err := d.cluster.StartAgentsWithJoinTokens(ctx, "demo", names...); err != nil {
		return err
	}
	for _, a := range d.cluster.Agents {
		pem := filepath.Join(a.DataDir, "tls", "agent.pem")
		info, err := os.Stat(pem)
		if err != nil {
			return fmt.Errorf("%s should have written its key and certificate: %w", a.Name, err)
		}
		fmt.Fprintf(d.out, "   %s enrolled: key and certificate in %s (mode %o); its hello will listen on 127.0.0.1:%d\n",
			a.Name, pem, info.Mode().Perm(), a.Port)
	}
	fmt.Fprintf(d.out, "   From now on each agent proves who it is with its certificate (mutual TLS), renewed at 2/3 of its life\n"+
		"   (--agent-cert-ttl, 24h by default); a join token is not needed again. Their identities and certificates:\n")
	_, err := d.ctl(ctx, "agents", "list", "--env", "demo")
	return err
}

// actAsDeployer makes the deployer's token the one cutoverctl uses.
func (d *demo) actAsDeployer() {
	fmt.Fprintf(d.out, "   From here on cutoverctl acts as demo-deployer, who may deploy to demo but not change environments,\n"+
		"   agents or tokens:\n   $ export CUTOVER_TOKEN_FILE=%s\n", d.deployerToken)
	d.token = d.deployerToken
}

// showViewerRefused has the viewer try to continue id: refused with
// PERMISSION_DENIED, and id stays in state want.
func (d *demo) showViewerRefused(ctx context.Context, id string, want cutoverv1.DeploymentState) error {
	out, err := d.runCtlAs(ctx, d.viewerToken, true, "deploy", "continue", id)
	if err == nil || !strings.Contains(out, "PermissionDenied") {
		return fmt.Errorf("deploy continue as a viewer should be refused with PermissionDenied, got %v:\n%s", err, out)
	}
	fmt.Fprintf(d.out, "   Refused with PERMISSION_DENIED. A viewer may still read it, and it is unchanged:\n")
	out, err = d.runCtlShown(ctx, d.viewerToken, quoteArgs([]string{"deploy", "get", id, "-o", "json"})+" | jq -r .state", "-o", "json", "deploy", "get", id)
	if err != nil {
		return err
	}
	var dep cutoverv1.Deployment
	if err := protojson.Unmarshal([]byte(out), &dep); err != nil {
		return fmt.Errorf("read deploy get -o json: %w", err)
	}
	fmt.Fprintf(d.out, "     %s\n", dep.GetState())
	if dep.GetState() != want {
		return fmt.Errorf("deployment %s is %s after the refused continue, want %s", id, dep.GetState(), want)
	}
	return nil
}

// showAudit prints the audit trail of deployment id and verifies the
// chain, as the viewer.
func (d *demo) showAudit(ctx context.Context, id string) error {
	for _, args := range [][]string{{"audit", "list", "--deployment", id}, {"audit", "verify"}} {
		out, err := d.runCtlCaptured(ctx, d.viewerToken, args...)
		fmt.Fprint(d.out, indent(out, "     "))
		if err != nil {
			return err
		}
	}
	return nil
}

// showBootstrapRevoke says how a real installation ends its first start.
func (d *demo) showBootstrapRevoke() error {
	b, err := os.ReadFile(d.cluster.AdminTokenFile)
	if err != nil {
		return err
	}
	id := token.ID(strings.TrimSpace(string(b)))
	if id == "" {
		return errors.New("the bootstrap token file holds no operator token")
	}
	fmt.Fprintf(d.out, "   On a real controller, once named admin tokens exist (token create --role admin), revoke the bootstrap\n"+
		"   token (the demo keeps it):\n   $ cutoverctl token revoke %s\n", id)
	return nil
}
