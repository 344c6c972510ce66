package controlplane

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cutover-dev/cutover/pkg/manifest"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// fakeAgent is a small agent for tests: a real AgentService client that
// says hello, really fetches and verifies the releases it is told to stage,
// and answers every command. It redials when its session ends, so it comes
// back after a controller restart.
type fakeAgent struct {
	name, env string
	fakeOpts

	mu       sync.Mutex
	ignore   map[string]int // command kind → how many to receive and leave unanswered
	addr     string
	running  map[string]string            // app → release
	staged   map[string][]string          // app → releases
	commands []string                     // kinds received, in order
	seqs     []int64                      // fakeSeq of each of commands: orders them across agents
	armFails bool                         // setFailArm: arm fails from now on
	before   map[string]map[string]string // activation (activationOf) → app → the release that ran before its commit
	// activations are the activations (activationOf) of the arm and
	// commit commands received, in order.
	activations []string
	sessions    int
	tls         *tls.Config // its certificate, once enrolled
	halt        func()      // stops the running agent (start sets it)
}

// fakeOpts says how a fake agent misbehaves.
type fakeOpts struct {
	// failActivate makes commit fail after a swap, and swap back.
	failActivate bool
	// failArm makes arm fail (as if a staged file were damaged).
	failArm bool
	// failHooks makes the hooks of these kinds fail ("before_activate",
	// "validate" (commit fails, swapped back), "after_activate").
	failHooks map[string]bool
	// labels are the agent's --label values.
	labels map[string]string
	// onStage runs when a stage command arrives, before the agent answers
	// it (a test advances its fake clock there: stage 1 "takes long").
	onStage func()
	// unansweredStages: the first so many stage commands are received and
	// left unanswered (as leaveUnanswered, from the start).
	unansweredStages int
	// validate, when set (setValidate), runs as each validate hook: a
	// non-empty result fails the hook with it.
	validate func() string
	// revision0 makes it an agent of the previous release, of agent
	// protocol revision 0: no revision in its hello, so a rollback by
	// command reaches it packed into deployment_id ("<id>~rollback.<n>").
	revision0 bool
}

// activationOf names the activation a command belongs to on the agent:
// "<deployment_id>/<rollback_attempt>".
func activationOf(deployment string, attempt uint32) string {
	return fmt.Sprintf("%s/%d", deployment, attempt)
}

func startFakeAgent(t *testing.T, addr, name, env string, failActivate bool) *fakeAgent {
	t.Helper()
	return startFakeAgentWith(t, addr, name, env, fakeOpts{failActivate: failActivate})
}

func startFakeAgentWith(t *testing.T, addr, name, env string, opts fakeOpts) *fakeAgent {
	t.Helper()
	a := &fakeAgent{name: name, env: env, fakeOpts: opts, addr: addr,
		running: map[string]string{}, before: map[string]map[string]string{}, staged: map[string][]string{}, ignore: map[string]int{"stage": opts.unansweredStages}}
	a.start(t)
	t.Cleanup(a.stop)
	return a
}

// start runs the agent (again, after stop: same certificate, same
// releases held) until stop.
func (a *fakeAgent) start(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			a.mu.Lock()
			addr := a.addr
			a.mu.Unlock()
			if err := a.session(ctx, addr); err != nil && ctx.Err() == nil {
				t.Logf("fake agent %s: session ended: %v", a.name, err)
			}
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond): // redial backoff
			}
		}
	}()
	a.mu.Lock()
	a.halt = func() {
		cancel()
		<-done
	}
	a.mu.Unlock()
}

// stop ends the agent's session and keeps it from dialing again, until start.
func (a *fakeAgent) stop() {
	a.mu.Lock()
	halt := a.halt
	a.halt = nil
	a.mu.Unlock()
	if halt != nil {
		halt()
	}
}

// setAddr points the agent at a restarted controller.
func (a *fakeAgent) setAddr(addr string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.addr = addr
}

func (a *fakeAgent) received() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.commands)
}

// receivedActivations returns the activations of the arm and commit
// commands received, in order.
func (a *fakeAgent) receivedActivations() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.activations)
}

func (a *fakeAgent) status() *cutoverv1.AgentStatus {
	a.mu.Lock()
	defer a.mu.Unlock()
	st := &cutoverv1.AgentStatus{}
	apps := map[string]bool{}
	for app := range a.running {
		apps[app] = true
	}
	for app := range a.staged {
		apps[app] = true
	}
	for app := range apps {
		st.Applications = append(st.Applications, &cutoverv1.AgentApplication{Name: app,
			RunningReleaseId: a.running[app], StagedReleaseIds: slices.Clone(a.staged[app])})
	}
	return st
}

func (a *fakeAgent) session(ctx context.Context, addr string) error {
	a.mu.Lock()
	have := a.tls
	a.mu.Unlock()
	conf, err := agentCreds(ctx, addr, a.env, a.name, have)
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.tls = conf
	a.mu.Unlock()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(conf)))
	if err != nil {
		return err
	}
	defer conn.Close()
	client := cutoverv1.NewAgentServiceClient(conn)
	stream, err := client.Connect(ctx)
	if err != nil {
		return err
	}
	hello := &cutoverv1.AgentHello{Name: a.name, Environment: a.env, Status: a.status(), Labels: a.labels, Revision: 1}
	if a.revision0 {
		hello.Revision = 0
	}
	if err := stream.Send(&cutoverv1.ConnectRequest{Msg: &cutoverv1.ConnectRequest_Hello{Hello: hello}}); err != nil {
		return err
	}
	a.mu.Lock()
	a.sessions++
	a.mu.Unlock()
	report := func(r *cutoverv1.CommandReport) error {
		return stream.Send(&cutoverv1.ConnectRequest{Msg: &cutoverv1.ConnectRequest_Report{Report: r}})
	}
	sendStatus := func() error {
		return stream.Send(&cutoverv1.ConnectRequest{Msg: &cutoverv1.ConnectRequest_Status{Status: a.status()}})
	}
	for {
		msg, err := stream.Recv()
		if err != nil {
			return err
		}
		if a.ignored(msg) {
			continue
		}
		switch c := msg.Command.(type) {
		case *cutoverv1.ConnectResponse_Stage:
			a.record("stage")
			if a.onStage != nil {
				a.onStage()
			}
			r := &cutoverv1.CommandReport{CommandId: c.Stage.CommandId, DeploymentId: c.Stage.DeploymentId}
			var size, got int64
			for _, ref := range c.Stage.Releases {
				n, err := fetchRelease(ctx, client, ref.ReleaseId)
				if err != nil {
					r.Outcome, r.Error = cutoverv1.CommandOutcome_COMMAND_OUTCOME_FAILED, err.Error()
					break
				}
				size, got = size+n, got+n
				if err := report(&cutoverv1.CommandReport{CommandId: r.CommandId, DeploymentId: r.DeploymentId,
					Outcome: cutoverv1.CommandOutcome_COMMAND_OUTCOME_PROGRESS, ReleaseBytes: size, TransferredBytes: got}); err != nil {
					return err
				}
				a.mu.Lock()
				if !slices.Contains(a.staged[ref.Application], ref.ReleaseId) {
					a.staged[ref.Application] = append(a.staged[ref.Application], ref.ReleaseId)
				}
				a.mu.Unlock()
			}
			if r.Outcome == 0 {
				r.Outcome, r.ReleaseBytes, r.TransferredBytes = cutoverv1.CommandOutcome_COMMAND_OUTCOME_DONE, size, got
			}
			if err := sendStatus(); err != nil {
				return err
			}
			if err := report(r); err != nil {
				return err
			}
		case *cutoverv1.ConnectResponse_Arm:
			a.record(map[bool]string{false: "arm", true: "arm(verify only)"}[c.Arm.VerifyOnly])
			a.mu.Lock()
			a.activations = append(a.activations, activationOf(c.Arm.DeploymentId, c.Arm.RollbackAttempt))
			a.mu.Unlock()
			r := &cutoverv1.CommandReport{CommandId: c.Arm.CommandId, DeploymentId: c.Arm.DeploymentId, RollbackAttempt: c.Arm.RollbackAttempt,
				Outcome: cutoverv1.CommandOutcome_COMMAND_OUTCOME_DONE}
			for _, ref := range c.Arm.Releases {
				a.mu.Lock()
				has := slices.Contains(a.staged[ref.Application], ref.ReleaseId) || a.running[ref.Application] == ref.ReleaseId
				a.mu.Unlock()
				if has {
					continue
				}
				if c.Arm.VerifyOnly {
					r.Outcome, r.Error = cutoverv1.CommandOutcome_COMMAND_OUTCOME_FAILED, "release "+ref.ReleaseId+" is not staged on this agent"
					break
				}
				n, err := fetchRelease(ctx, client, ref.ReleaseId)
				if err != nil {
					r.Outcome, r.Error = cutoverv1.CommandOutcome_COMMAND_OUTCOME_FAILED, err.Error()
					break
				}
				r.ReleaseBytes, r.TransferredBytes = r.ReleaseBytes+n, r.TransferredBytes+n
				a.mu.Lock()
				a.staged[ref.Application] = append(a.staged[ref.Application], ref.ReleaseId)
				a.mu.Unlock()
			}
			a.mu.Lock()
			armFails := a.failArm || a.armFails
			a.mu.Unlock()
			if armFails {
				r.Outcome, r.Error = cutoverv1.CommandOutcome_COMMAND_OUTCOME_FAILED, "staged release no longer matches its manifest: \"bin/app\" has 3 bytes, the manifest says 5"
			}
			if err := sendStatus(); err != nil {
				return err
			}
			if err := report(r); err != nil {
				return err
			}
		case *cutoverv1.ConnectResponse_Commit:
			a.record("commit")
			key := activationOf(c.Commit.DeploymentId, c.Commit.RollbackAttempt)
			a.mu.Lock()
			a.activations = append(a.activations, key)
			a.mu.Unlock()
			r := &cutoverv1.CommandReport{CommandId: c.Commit.CommandId, DeploymentId: c.Commit.DeploymentId, RollbackAttempt: c.Commit.RollbackAttempt,
				SwapTime: timestamppb.Now(), Outcome: cutoverv1.CommandOutcome_COMMAND_OUTCOME_DONE}
			r.Hooks = a.runHooks(c.Commit.Validate)
			a.mu.Lock()
			failActivate := a.failActivate
			a.mu.Unlock()
			switch {
			case failActivate:
				r.Outcome, r.Error, r.SwappedBack = cutoverv1.CommandOutcome_COMMAND_OUTCOME_FAILED, "health check failed: connection refused", true
			case failedHook(r.Hooks) != "":
				r.Outcome, r.Error, r.SwappedBack = cutoverv1.CommandOutcome_COMMAND_OUTCOME_FAILED, failedHook(r.Hooks), true
			default:
				a.mu.Lock()
				if a.before[key] == nil {
					a.before[key] = map[string]string{}
				}
				for _, ref := range c.Commit.Releases {
					if _, ok := a.before[key][ref.Application]; !ok {
						a.before[key][ref.Application] = a.running[ref.Application]
					}
					a.running[ref.Application] = ref.ReleaseId
				}
				a.mu.Unlock()
			}
			if err := sendStatus(); err != nil {
				return err
			}
			if err := report(r); err != nil {
				return err
			}
		case *cutoverv1.ConnectResponse_Disarm:
			a.record("disarm")
			if err := report(&cutoverv1.CommandReport{CommandId: c.Disarm.CommandId, DeploymentId: c.Disarm.DeploymentId, RollbackAttempt: c.Disarm.RollbackAttempt,
				Outcome: cutoverv1.CommandOutcome_COMMAND_OUTCOME_DONE}); err != nil {
				return err
			}
		case *cutoverv1.ConnectResponse_Hooks:
			r := &cutoverv1.CommandReport{CommandId: c.Hooks.CommandId, DeploymentId: c.Hooks.DeploymentId, RollbackAttempt: c.Hooks.RollbackAttempt, Outcome: cutoverv1.CommandOutcome_COMMAND_OUTCOME_DONE}
			r.Hooks = a.runHooks(c.Hooks.Hooks)
			if e := failedHook(r.Hooks); e != "" {
				r.Outcome, r.Error = cutoverv1.CommandOutcome_COMMAND_OUTCOME_FAILED, e
			}
			if err := report(r); err != nil {
				return err
			}
		case *cutoverv1.ConnectResponse_Rollback:
			a.record("rollback")
			a.swapBack(c.Rollback)
			if err := report(&cutoverv1.CommandReport{CommandId: c.Rollback.CommandId, DeploymentId: c.Rollback.DeploymentId,
				Outcome: cutoverv1.CommandOutcome_COMMAND_OUTCOME_DONE}); err != nil {
				return err
			}
		case *cutoverv1.ConnectResponse_Drop:
			a.record("drop")
			if err := report(&cutoverv1.CommandReport{CommandId: c.Drop.CommandId, DeploymentId: c.Drop.DeploymentId,
				Outcome: cutoverv1.CommandOutcome_COMMAND_OUTCOME_DONE}); err != nil {
				return err
			}
		}
	}
}

// swapBack runs again, for each application of the rollback command c,
// the release that ran before its deployment's commit.
func (a *fakeAgent) swapBack(c *cutoverv1.RollbackCommand) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for app, r := range a.before[activationOf(c.DeploymentId, 0)] {
		if len(c.Applications) > 0 && !slices.Contains(c.Applications, app) {
			continue
		}
		if r == "" {
			delete(a.running, app)
		} else {
			a.running[app] = r
		}
	}
}

// setFailActivate makes the health check after each swap fail (fails)
// or pass from now on.
func (a *fakeAgent) setFailActivate(fails bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.failActivate = fails
}

// leaveUnanswered makes the agent receive the next n commands of a kind
// and not answer them, as if it had crashed before it could.
func (a *fakeAgent) leaveUnanswered(kind string, n int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.ignore[kind] = n
}

func (a *fakeAgent) ignored(msg *cutoverv1.ConnectResponse) bool {
	kind := map[bool]string{true: "stage", false: ""}[msg.GetStage() != nil]
	switch {
	case msg.GetCommit() != nil:
		kind = "commit"
	case msg.GetArm() != nil:
		kind = "arm"
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ignore[kind] == 0 {
		return false
	}
	a.ignore[kind]--
	a.commands = append(a.commands, kind+"(unanswered)")
	a.seqs = append(a.seqs, fakeSeq.Add(1))
	return true
}

// hookNames are the names of cutover.yaml's hook kinds.
var hookNames = map[cutoverv1.HookKind]string{
	cutoverv1.HookKind_HOOK_KIND_BEFORE_ACTIVATE: "before_activate",
	cutoverv1.HookKind_HOOK_KIND_VALIDATE:        "validate",
	cutoverv1.HookKind_HOOK_KIND_AFTER_ACTIVATE:  "after_activate",
}

// runHooks records "<kind>:<app>#<index>" for each hook and fails the
// first of a kind in failHooks (the ones after it do not run).
func (a *fakeAgent) runHooks(refs []*cutoverv1.HookRef) []*cutoverv1.HookResult {
	var out []*cutoverv1.HookResult
	for _, ref := range refs {
		name := fmt.Sprintf("%s:%s#%d", hookNames[ref.Kind], ref.Application, ref.Index)
		a.record(name)
		res := &cutoverv1.HookResult{Application: ref.Application, Kind: ref.Kind, Index: ref.Index, Command: name, Output: "ran " + name}
		a.mu.Lock()
		fails, validate := a.failHooks[hookNames[ref.Kind]], a.validate
		a.mu.Unlock()
		if fails {
			res.ExitCode, res.Error = 1, name+" exited with status 1"
		}
		if validate != nil && ref.Kind == cutoverv1.HookKind_HOOK_KIND_VALIDATE {
			if msg := validate(); msg != "" {
				res.ExitCode, res.Error = 1, name+": "+msg
			}
		}
		out = append(out, res)
		if res.Error != "" {
			break
		}
	}
	return out
}

func failedHook(rs []*cutoverv1.HookResult) string {
	for _, r := range rs {
		if r.Error != "" {
			return r.Error
		}
	}
	return ""
}

// fakeSeq numbers the commands every fake agent receives, in the order
// they are received, so that tests can order them across agents.
var fakeSeq atomic.Int64

func (a *fakeAgent) record(kind string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.commands = append(a.commands, kind)
	a.seqs = append(a.seqs, fakeSeq.Add(1))
}

// lastSeq is the fakeSeq of the last command of kind received, or 0.
func (a *fakeAgent) lastSeq(kind string) int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i := len(a.commands) - 1; i >= 0; i-- {
		if a.commands[i] == kind {
			return a.seqs[i]
		}
	}
	return 0
}

// setValidate makes fn run as each validate hook (see fakeOpts.validate).
func (a *fakeAgent) setValidate(fn func() string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.validate = fn
}

// setFailArm makes arm fail (fails) or succeed from now on.
func (a *fakeAgent) setFailArm(fails bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.armFails = fails
}

// setFailHooks makes the hooks of kind ("before_activate", …) fail (fails)
// or succeed from now on.
func (a *fakeAgent) setFailHooks(kind string, fails bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.failHooks == nil {
		a.failHooks = map[string]bool{}
	}
	a.failHooks[kind] = fails
}

// runningRelease is the release the agent runs of app.
func (a *fakeAgent) runningRelease(app string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.running[app]
}

// fetchRelease gets a release's manifest and chunks and verifies them; it
// returns the release's size.
func fetchRelease(ctx context.Context, client cutoverv1.AgentServiceClient, id string) (int64, error) {
	mr, err := client.GetManifest(ctx, &cutoverv1.GetManifestRequest{ReleaseId: id})
	if err != nil {
		return 0, err
	}
	if got := manifest.ReleaseID(mr.Manifest); got != id {
		return 0, fmt.Errorf("manifest of %s hashes to %s", id, got)
	}
	m, err := manifest.Decode(mr.Manifest)
	if err != nil {
		return 0, err
	}
	req := &cutoverv1.FetchChunksRequest{ReleaseId: id}
	for _, c := range m.ChunkIDs() {
		req.Ids = append(req.Ids, c[:])
	}
	stream, err := client.FetchChunks(ctx, req)
	if err != nil {
		return 0, err
	}
	n := 0
	for {
		resp, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, err
		}
		for _, c := range resp.Chunks {
			if h := manifest.HashChunk(c.Data); string(h[:]) != string(c.Id) {
				return 0, fmt.Errorf("chunk %x does not match its hash", c.Id)
			}
			n++
		}
	}
	if n != len(req.Ids) {
		return 0, fmt.Errorf("got %d chunks, want %d", n, len(req.Ids))
	}
	return m.Size(), nil
}
