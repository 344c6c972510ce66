package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/cutover-dev/cutover/internal/bench"
	"github.com/cutover-dev/cutover/internal/localcluster"
	"github.com/cutover-dev/cutover/pkg/poll"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// rawAgent is a cutover-agent the test starts itself (with --log-level
// debug), for agents that are expected to fail or be cut off, which the
// cluster's own agents are not.
type rawAgent struct {
	*localcluster.Proc
	dataDir string
}

// startRawAgent starts cutover-agent env/name enrolling with the join
// token in tokenFile; it is stopped when the test ends.
func (c *cluster) startRawAgent(env, name, tokenFile string) *rawAgent {
	c.t.Helper()
	dir := filepath.Join(c.dir, name)
	p, err := c.StartProc(name, "cutover-agent", "--controller", c.Addr, "--environment", env, "--name", name,
		"--data-dir", filepath.Join(dir, "data"), "--root", filepath.Join(dir, "root"), "--join-token-file", tokenFile, "--log-level", "debug")
	if err != nil {
		c.t.Fatal(err)
	}
	a := &rawAgent{Proc: p, dataDir: filepath.Join(dir, "data")}
	t := c.t
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("--- log of %s:\n%s", name, a.text())
		}
	})
	return a
}

// text returns the agent's log.
func (a *rawAgent) text() string {
	b, _ := os.ReadFile(a.Log)
	return string(b)
}

// running reports whether the process is still running.
func (a *rawAgent) running() bool {
	ended, _ := a.Exited()
	return !ended
}

// waitExit waits until the agent exits and fails the test unless it
// exited with a non-zero status and its log says every one of words.
func (a *rawAgent) waitExit(c *cluster, words ...string) {
	c.t.Helper()
	c.waitFor(deployDeadline, "agent "+a.Name+" exits", func() error {
		if a.running() {
			return errors.New("it still runs")
		}
		return nil
	})
	_, err := a.Exited()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() == 0 {
		c.t.Errorf("agent %s exited with %v, want a non-zero status", a.Name, err)
	}
	for _, w := range words {
		if !strings.Contains(a.text(), w) {
			c.t.Errorf("the log of agent %s does not say %q:\n%s", a.Name, w, a.text())
		}
	}
}

// waitConnected waits until ListAgents shows agent name connected.
func (c *cluster) waitConnected(name string) {
	c.t.Helper()
	c.waitFor(30*time.Second, name+" connected", func() error {
		if a := c.listedAgent(name); !a.GetConnected() {
			return fmt.Errorf("listed as %v", a)
		}
		return nil
	})
}

// waitDisconnected waits until ListAgents no longer shows agent name
// connected (keepalive notices a stopped agent within about 15 s).
func (c *cluster) waitDisconnected(name string) {
	c.t.Helper()
	c.waitFor(30*time.Second, name+" disconnected", func() error {
		resp, err := c.Admin.ListAgents(context.Background(), &cutoverv1.ListAgentsRequest{})
		if err != nil {
			return err
		}
		for _, a := range resp.GetAgents() {
			if a.GetName() == name && a.GetConnected() {
				return fmt.Errorf("%s still listed connected", name)
			}
		}
		return nil
	})
}

// joinTokenFile creates a join token with req and writes it to a file in
// the cluster's directory named file.
func (c *cluster) joinTokenFile(file string, req *cutoverv1.CreateJoinTokenRequest) (string, *cutoverv1.CreateJoinTokenResponse) {
	c.t.Helper()
	resp, err := c.Admin.CreateJoinToken(context.Background(), req)
	if err != nil {
		c.t.Fatalf("CreateJoinToken(%v): %v", req, err)
	}
	path := filepath.Join(c.dir, file)
	if err := os.WriteFile(path, []byte(resp.GetToken()+"\n"), 0o600); err != nil {
		c.t.Fatal(err)
	}
	return path, resp
}

// TestTrustJoinTokens starts real agents with a join token used a second
// time, an expired one and one of another environment: each agent exits
// non-zero saying why, is not listed connected, and holds no certificate;
// the refused token of the other environment was not used up.
func TestTrustJoinTokens(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.createEnv("staging", false)
	c.createEnv("production", false)

	t.Log("a token used twice")
	once, _ := c.joinTokenFile("once.token", &cutoverv1.CreateJoinTokenRequest{Environment: "staging"})
	c.startRawAgent("staging", "fe-1", once)
	c.waitConnected("fe-1")
	second := c.startRawAgent("staging", "fe-2", once)
	second.waitExit(c, "used already", "1 of 1 uses")

	t.Log("an expired token")
	expired, resp := c.joinTokenFile("expired.token", &cutoverv1.CreateJoinTokenRequest{Environment: "staging", Ttl: durationpb.New(time.Second)})
	c.waitFor(10*time.Second, "the join token's expiry", func() error {
		if time.Now().Before(resp.GetExpireTime().AsTime()) {
			return errors.New("not yet")
		}
		return nil
	})
	late := c.startRawAgent("staging", "fe-3", expired)
	late.waitExit(c, "expired")

	t.Log("a token for another environment")
	prod, _ := c.joinTokenFile("production.token", &cutoverv1.CreateJoinTokenRequest{Environment: "production"})
	stranger := c.startRawAgent("staging", "fe-4", prod)
	stranger.waitExit(c, "is for environment production, not staging")

	for _, a := range []*rawAgent{second, late, stranger} {
		c.checkNotConnected(a.Name)
		if _, err := os.Stat(filepath.Join(a.dataDir, "tls", "agent.pem")); err == nil {
			t.Errorf("refused agent %s holds a certificate", a.Name)
		}
	}
	t.Log("the production token was not used by the refusal")
	c.startRawAgent("production", "fe-5", prod)
	c.waitConnected("fe-5")
	if a := c.listedAgent("fe-5"); a.GetEnvironment() != "production" {
		t.Errorf("fe-5 is listed in %q", a.GetEnvironment())
	}
}

// TestTrustRevokeAgent revokes an agent with cutoverctl in the middle of a
// prepare that stages on it: it is listed disconnected within two
// seconds, the prepare fails naming it, its process keeps trying and is
// refused (its log says revoked), it stays disconnected, and a deployment
// prepared afterwards leaves it out, naming it.
func TestTrustRevokeAgent(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	ctx := context.Background()
	src := filepath.Join(c.dir, "src")
	if err := bench.Generate(src, 96<<20, 5); err != nil {
		t.Fatal(err)
	}
	c.createEnv("rev", true)
	c.startAgents("rev", "fe-1")
	tok := filepath.Join(c.dir, "fe-2.token")
	if err := c.WriteJoinToken(ctx, "rev", "fe-2", tok); err != nil {
		t.Fatal(err)
	}
	fe2 := c.startRawAgent("rev", "fe-2", tok)
	c.waitConnected("fe-2")
	c.registerApp(src)
	id := c.createDeployment("rev", bench.AppName, "v1")
	if _, err := c.Admin.PrepareDeployment(ctx, &cutoverv1.PrepareDeploymentRequest{Id: id}); err != nil {
		t.Fatalf("PrepareDeployment: %v", err)
	}
	c.waitFor(deployDeadline, "fe-2 staging", func() error {
		d, err := c.Admin.GetDeployment(ctx, &cutoverv1.GetDeploymentRequest{Id: id})
		if err != nil {
			return err
		}
		for _, a := range d.GetAgents() {
			if a.GetName() == "fe-2" && a.GetState() == cutoverv1.AgentDeploymentState_AGENT_DEPLOYMENT_STATE_STAGING && a.GetTransferredBytes() > 0 {
				return nil
			}
		}
		return fmt.Errorf("%s: %v", d.GetState(), d.GetAgents())
	})

	logBefore := len(fe2.text())
	code, out, errOut := c.ctl("agent", "revoke", "fe-2", "--environment", "rev")
	if code != 0 {
		t.Fatalf("cutoverctl agent revoke: exit %d\n%s%s", code, out, errOut)
	}
	revoked := time.Now()
	c.waitFor(2*time.Second, "fe-2 listed disconnected", func() error {
		if a := c.listedAgent("fe-2"); a.GetConnected() || a.GetRevokeTime() == nil {
			return fmt.Errorf("listed as %v", a)
		}
		return nil
	})
	t.Logf("fe-2 listed disconnected and revoked %s after cutoverctl returned", time.Since(revoked).Round(time.Millisecond))

	d := c.waitSettled(id, prepared)
	if d.GetState() != cutoverv1.DeploymentState_DEPLOYMENT_STATE_FAILED {
		t.Errorf("the prepare during the revocation ended %s, want FAILED:\n%s", d.GetState(), asJSON(d))
	}
	named := strings.Contains(d.GetError(), "fe-2")
	for _, a := range d.GetAgents() {
		if a.GetName() == "fe-2" {
			named = named || strings.Contains(a.GetError(), "fe-2")
			t.Logf("fe-2 in the deployment: %s %q", a.GetState(), a.GetError())
		}
	}
	if !named {
		t.Errorf("neither the deployment's error nor fe-2's names fe-2:\n%s", asJSON(d))
	}

	c.waitFor(30*time.Second, "fe-2 refused three times", func() error {
		if !fe2.running() {
			return errors.New("fe-2 exited")
		}
		if n := strings.Count(fe2.text()[logBefore:], "revoked"); n < 3 {
			return fmt.Errorf("its log says revoked %d times since the revocation", n)
		}
		return nil
	})
	c.checkNotConnected("fe-2")

	t.Log("a deployment prepared after the revocation")
	id2 := c.createDeployment("rev", bench.AppName, "v2")
	d2, err := c.Admin.PrepareDeployment(ctx, &cutoverv1.PrepareDeploymentRequest{Id: id2})
	if err != nil {
		t.Fatalf("PrepareDeployment after the revocation: %v", err)
	}
	for _, a := range d2.GetAgents() {
		if a.GetName() == "fe-2" {
			t.Errorf("the deployment prepared after the revocation has fe-2:\n%s", asJSON(d2))
		}
	}
	if h := d2.GetHistory(); len(h) == 0 || !strings.Contains(h[len(h)-1].GetMessage(), "fe-2") {
		t.Errorf("the prepare after the revocation does not name fe-2 as left out:\n%s", asJSON(d2))
	}
	if _, err := c.Admin.AbortDeployment(ctx, &cutoverv1.AbortDeploymentRequest{Id: id2, Reason: "test done"}); err != nil {
		t.Logf("AbortDeployment: %v", err)
	}
	c.checkNotConnected("fe-2")
}

// writeRandomFile writes n seeded random bytes to name.
func writeRandomFile(t *testing.T, name string, n int64, seed uint64) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	var s [32]byte
	s[0] = byte(seed)
	w := bufio.NewWriterSize(f, 1<<20)
	if _, err := io.CopyN(w, rand.NewChaCha8(s), n); err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(w.Flush(), f.Close()); err != nil {
		t.Fatal(err)
	}
}

// TestTrustRenewalDuringPrepare runs a prepare of examples/hello with a
// 200 MiB file while the agent's certificates live 10 s: the prepare
// completes, the agent renewed its certificate meanwhile (agent.pem
// changed), and nothing was sent twice.
func TestTrustRenewalDuringPrepare(t *testing.T) {
	t.Parallel()
	c := newCluster(t, "--agent-cert-ttl", "10s")
	ctx := context.Background()
	src := filepath.Join(c.dir, "src")
	copyApp(t, src, "v1")
	writeRandomFile(t, filepath.Join(src, "data", "big.bin"), 200<<20, 6)
	c.createEnv("production", true)
	c.startAgents("production", "fe-1")
	a := c.Agents[0]
	pem := filepath.Join(a.DataDir, "tls", "agent.pem")
	c.registerApp(src)
	id := c.createDeployment("production", "hello", "v1")

	read := func() []byte {
		b, err := os.ReadFile(pem)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	last, renewals := read(), 0
	start := time.Now()
	if _, err := c.Admin.PrepareDeployment(ctx, &cutoverv1.PrepareDeploymentRequest{Id: id}); err != nil {
		t.Fatalf("PrepareDeployment: %v", err)
	}
	var d *cutoverv1.Deployment
	c.waitFor(deployDeadline, "PREPARED", func() error {
		if b := read(); !bytes.Equal(b, last) {
			last, renewals = b, renewals+1
		}
		var err error
		if d, err = c.Admin.GetDeployment(ctx, &cutoverv1.GetDeploymentRequest{Id: id}); err != nil {
			return err
		}
		if st := d.GetState(); st != cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARING {
			if st != prepared {
				return fmt.Errorf("deployment %s: %w", st, errors.New(d.GetError()))
			}
			return nil
		}
		return errors.New("still PREPARING")
	})
	t.Logf("prepared in %s (transfer %s); agent.pem replaced %d times meanwhile; the agent's log says renewed %d times in all",
		time.Since(start).Round(time.Millisecond), d.GetTransferDuration().AsDuration().Round(time.Millisecond), renewals,
		strings.Count(a.Proc.Tail(100000), "renewed the agent's certificate"))
	if renewals == 0 {
		t.Errorf("the agent did not renew its certificate during the prepare")
	}
	for _, line := range strings.Split(a.Proc.Tail(100000), "\n") {
		if strings.Contains(line, "renewed the agent's certificate") {
			t.Log(line)
		}
	}
	ag := d.GetAgents()[0]
	if ag.GetState() != cutoverv1.AgentDeploymentState_AGENT_DEPLOYMENT_STATE_STAGED || ag.GetReleaseBytes() < 200<<20 {
		t.Errorf("agent: %s", asJSON(ag))
	}
	if float64(ag.GetTransferredBytes()) > 1.05*float64(ag.GetReleaseBytes()) {
		t.Errorf("the agent received %d bytes of a %d-byte release: some were sent twice", ag.GetTransferredBytes(), ag.GetReleaseBytes())
	}
	// The agent is still connected with its renewed certificate.
	c.waitConnected("fe-1")
}

// TestTrustRenewsBeforeExpiry watches the certificate of an agent whose
// certificates live 10 s for two renewals: agent.pem must never hold an
// expired certificate, or a reconnect at that moment is refused and the
// agent, which renews over an authenticated connection, is cut off for
// good.
//
// It failed while the controller backdated NotBefore by a whole minute
// whatever the lifetime: the agent renews at 2/3 of NotAfter-NotBefore,
// which for a lifetime under 30 s was already past at issue.
func TestTrustRenewsBeforeExpiry(t *testing.T) {
	t.Parallel()
	c := newCluster(t, "--agent-cert-ttl", "10s")
	c.createEnv("production", false)
	c.startAgents("production", "fe-1")
	pemFile := filepath.Join(c.Agents[0].DataDir, "tls", "agent.pem")
	var last []byte
	renewals := 0
	c.waitFor(time.Minute, "two renewals", func() error {
		b, err := os.ReadFile(pemFile)
		if err != nil {
			return err
		}
		block, _ := pem.Decode(b)
		if block == nil {
			return poll.Permanent(errors.New("agent.pem holds no PEM block"))
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return poll.Permanent(err)
		}
		if now := time.Now(); !now.Before(cert.NotAfter) {
			return poll.Permanent(fmt.Errorf("at %s agent.pem holds a certificate that expired at %s", now.UTC().Format(time.RFC3339Nano), cert.NotAfter.UTC().Format(time.RFC3339)))
		}
		if !bytes.Equal(b, last) {
			last, renewals = b, renewals+1
		}
		if renewals < 3 { // the first read, then two renewals
			return fmt.Errorf("%d renewals", renewals-1)
		}
		return nil
	})
}

// TestTrustAgentConnectionOutlivesItsFirstCertificate lets an agent whose
// certificates live 10 s renew three times (or fail to), then prepares a
// deployment:
// its RPCs go over the connection it opened with its first certificate,
// which must still be honoured.
//
// It failed while the controller accepted only the serials still listed
// in the enrollment, from which renewals pruned the expired ones: a
// connection opened with the first certificate was refused once it was
// pruned. Certificates now name their enrollment instead.
func TestTrustAgentConnectionOutlivesItsFirstCertificate(t *testing.T) {
	t.Parallel()
	c := newCluster(t, "--agent-cert-ttl", "10s")
	src := filepath.Join(c.dir, "src")
	copyApp(t, src, "v1")
	c.createEnv("production", true)
	c.startAgents("production", "fe-1")
	pemFile := filepath.Join(c.Agents[0].DataDir, "tls", "agent.pem")
	last, replaced := []byte(nil), -1
	c.waitFor(time.Minute, "three renewals", func() error {
		b, err := os.ReadFile(pemFile)
		if err != nil {
			return err
		}
		if !bytes.Equal(b, last) {
			last, replaced = b, replaced+1
		}
		if replaced < 3 && !strings.Contains(c.Agents[0].Proc.Tail(1000), "retrying") {
			return fmt.Errorf("%d renewals", replaced)
		}
		return nil
	})
	t.Logf("after %d renewals the agent's log says:\n%s", replaced, c.Agents[0].Proc.Tail(5))
	c.registerApp(src)
	id := c.createDeployment("production", "hello", "v1")
	if _, err := c.Admin.PrepareDeployment(context.Background(), &cutoverv1.PrepareDeploymentRequest{Id: id}); err != nil {
		t.Fatalf("PrepareDeployment: %v", err)
	}
	c.waitDeployment(id, prepared)
}
