// Package fleet keeps the controller's view of its agents: which are
// connected (one session per agent name), what each runs and holds, the
// commands sent to each and not yet answered, and the reports that come back.
//
// A command is recorded as outstanding when sent and forgotten when its
// agent reports DONE or FAILED; an agent that (re)connects gets its
// outstanding commands again, in the order they were sent. Reports go to one
// channel, Reports(), that the deployment service reads, except the reports
// of a command sent with Call, which go to the caller (call.go).
package fleet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/pkg/appspec"
	"github.com/cutover-dev/cutover/pkg/errkind"
)

// Config holds what a Fleet needs.
type Config struct {
	Store      model.Store
	Log        *slog.Logger
	Registerer prometheus.Registerer // nil: metrics are not registered
	Clock      func() time.Time
}

// Fleet is the set of agents.
type Fleet struct {
	store   model.Store
	log     *slog.Logger
	clock   func() time.Time
	reports chan Report

	records records // agents' records, written in groups (records.go)

	mu          sync.Mutex
	sessions    map[string]*Session
	connecting  map[string]int         // agent name → Connects writing its record
	removing    map[string]bool        // agent name → a Remove is deleting it
	outstanding map[string][]Command   // agent name → commands not answered yet, in send order
	joined      map[string]struct{}    // agents connected since the last Joined
	joinWake    chan struct{}          // poked (cap 1) when joined grows
	waiters     map[string]chan Report // command id → the Call waiting for its final report (cap 1)
	swarms      map[string]*swarmView  // deployment id → its swarm's members (swarm.go)
	peerIndexes map[string]*peerIndex  // deployment id → the peers its commands offer (peerindex.go)
	// peersSettings: environment → its peers_disabled, read lately (peers.go)
	peersSettings map[string]peersSetting
}

// New returns an empty fleet.
func New(cfg Config) (*Fleet, error) {
	clock := cfg.Clock
	if clock == nil {
		clock = time.Now
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f := &Fleet{
		store:         cfg.Store,
		log:           log,
		clock:         clock,
		reports:       make(chan Report, 256),
		records:       records{store: cfg.Store},
		sessions:      map[string]*Session{},
		connecting:    map[string]int{},
		removing:      map[string]bool{},
		outstanding:   map[string][]Command{},
		joined:        map[string]struct{}{},
		joinWake:      make(chan struct{}, 1),
		waiters:       map[string]chan Report{},
		swarms:        map[string]*swarmView{},
		peerIndexes:   map[string]*peerIndex{},
		peersSettings: map[string]peersSetting{},
	}
	if err := registerMetrics(f, cfg.Registerer); err != nil {
		return nil, err
	}
	return f, nil
}

// Connect opens the session of the agent that said hello: it records the
// agent (durably, in a group with the agents that connect at the same
// time), replaces any earlier session of the same name, and queues
// the agent's outstanding commands on the new session. Errors:
// InvalidArgument for a name or environment that is not a DNS label.
func (f *Fleet) Connect(h Hello) (*Session, error) {
	if err := appspec.ValidName(h.Name); err != nil {
		return nil, fmt.Errorf("agent name: %w", err)
	}
	if err := appspec.ValidName(h.Environment); err != nil {
		return nil, fmt.Errorf("agent %s: environment: %w", h.Name, err)
	}
	rec := model.Agent{Name: h.Name, Environment: h.Environment, Labels: h.Labels,
		Applications: h.Applications, LastSeen: f.clock()}
	// Remove refuses an agent that is connecting, as one that is
	// connected: it sees either no record or an agent it must not remove.
	// The record is written without f.mu, in a group with the records of
	// the agents that connect at the same time (records.go).
	f.mu.Lock()
	if f.removing[h.Name] {
		f.mu.Unlock()
		return nil, fmt.Errorf("agent %s is being removed; it must enroll again: %w", h.Name, errkind.Unavailable)
	}
	f.connecting[h.Name]++
	f.mu.Unlock()
	err := f.records.put(rec)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.connecting[h.Name]--; f.connecting[h.Name] == 0 {
		delete(f.connecting, h.Name)
	}
	if err != nil {
		return nil, fmt.Errorf("record agent %s: %w", h.Name, err)
	}
	s := newSession(rec)
	s.peerAddress = h.PeerAddress

	if old := f.sessions[h.Name]; old != nil {
		old.close()
		f.log.Info("agent session replaced by a new one", "agent", h.Name)
	}
	f.sessions[h.Name] = s
	for _, c := range f.outstanding[h.Name] {
		s.push(c)
	}
	f.log.Info("agent connected", "agent", h.Name, "environment", h.Environment,
		"outstanding_commands", len(f.outstanding[h.Name]))
	f.joined[h.Name] = struct{}{}
	select {
	case f.joinWake <- struct{}{}:
	default:
	}
	return s, nil
}

// Joins is poked after agents connect; Joined then says which.
func (f *Fleet) Joins() <-chan struct{} { return f.joinWake }

// Joined returns the names of the agents that connected since the last
// call (each once), and forgets them.
func (f *Fleet) Joined() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, 0, len(f.joined))
	for n := range f.joined {
		out = append(out, n)
	}
	clear(f.joined)
	slices.Sort(out)
	return out
}

// Remove forgets agent name of env, which must not be connected: its
// record and its enrollment are deleted (it must enroll again to come
// back) and the commands still waiting for it are dropped. It returns the
// record as it was (only its name and environment if it was enrolled but
// never connected). Errors: NotFound if neither exists; InvalidArgument if
// it belongs to another environment; FailedPrecondition while connected.
// Nothing changes on error.
func (f *Fleet) Remove(env, name string) (*model.Agent, error) {
	// The store is written without f.mu: deployment code asks the fleet
	// inside its store transactions, so holding f.mu while waiting for
	// the store's write lock could deadlock with it. Connect refuses the
	// agent meanwhile.
	f.mu.Lock()
	if err := f.removableLocked(name); err != nil {
		f.mu.Unlock()
		return nil, err
	}
	f.removing[name] = true
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.removing, name)
		f.mu.Unlock()
	}()
	var out *model.Agent
	err := f.store.Update(func(tx model.Tx) error {
		rec, err := tx.Agent(name)
		if err != nil && !errors.Is(err, errkind.NotFound) {
			return err
		}
		enr, eerr := tx.Enrollment(name)
		if eerr != nil && !errors.Is(eerr, errkind.NotFound) {
			return eerr
		}
		switch {
		case rec == nil && enr == nil:
			return fmt.Errorf("agent %q is unknown (never connected nor enrolled); nothing was changed: %w", name, errkind.NotFound)
		case rec != nil:
			out = rec
		default:
			out = &model.Agent{Name: enr.Name, Environment: enr.Environment}
		}
		if env != "" && out.Environment != env {
			return fmt.Errorf("agent %s belongs to environment %s, not %s; nothing was changed: %w", name, out.Environment, env, errkind.InvalidArgument)
		}
		if err := tx.DeleteAgent(name); err != nil {
			return err
		}
		if enr != nil && enr.Environment == out.Environment {
			return tx.DeleteEnrollment(name)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	delete(f.outstanding, name)
	f.mu.Unlock()
	f.log.Info("agent removed", "agent", name, "environment", out.Environment)
	return out, nil
}

// removableLocked says why agent name cannot be removed now, if it
// cannot: it is connected, connecting, or being removed. f.mu is held.
func (f *Fleet) removableLocked(name string) error {
	if s := f.sessions[name]; s != nil {
		return fmt.Errorf("agent %s of environment %s is connected: only an agent that is not connected can be removed; stop cutover-agent on that front-end first (or revoke it: `cutoverctl agent revoke %s --environment %s`); nothing was changed: %w",
			name, s.agent.Environment, name, s.agent.Environment, errkind.FailedPrecondition)
	}
	if f.connecting[name] > 0 {
		return fmt.Errorf("agent %s is connecting: only an agent that is not connected can be removed; stop cutover-agent on that front-end first; nothing was changed: %w", name, errkind.FailedPrecondition)
	}
	if f.removing[name] {
		return fmt.Errorf("agent %s is being removed by another request; nothing was changed: %w", name, errkind.FailedPrecondition)
	}
	return nil
}

// Disconnect closes s. It does nothing if s was already replaced.
func (f *Fleet) Disconnect(s *Session) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s.close()
	if f.sessions[s.agent.Name] == s {
		delete(f.sessions, s.agent.Name)
		f.log.Info("agent disconnected", "agent", s.agent.Name, "environment", s.agent.Environment)
	}
}

// Status records what the agent of s now runs and holds, durably (in a
// group with the records of other agents written at the same time).
func (f *Fleet) Status(s *Session, apps []model.AgentApplication) error {
	f.mu.Lock()
	s.agent.Applications = apps
	s.agent.LastSeen = f.clock()
	rec := s.agent
	f.mu.Unlock()
	return f.records.put(rec)
}

// Report passes an agent's report on to Reports(). A final report forgets
// the command; a stage or activate DONE also updates the agent's view (the
// release is staged, or running) until its next status says more.
func (f *Fleet) Report(ctx context.Context, s *Session, r Report) error {
	r.Agent = s.agent.Name
	f.mu.Lock()
	if r.Outcome.Final() {
		cmds := f.outstanding[r.Agent]
		if i := slices.IndexFunc(cmds, func(c Command) bool { return c.ID == r.CommandID }); i >= 0 {
			if r.Outcome == Done {
				s.agent.Applications = applyDone(s.agent.Applications, cmds[i])
			}
			f.outstanding[r.Agent] = slices.Delete(cmds, i, i+1)
		}
		s.agent.LastSeen = f.clock()
	}
	called := f.deliverLocked(r)
	f.mu.Unlock()
	if called {
		return nil
	}
	if r.DeploymentID == "" { // the answer to a Call that has ended: nobody waits for it
		f.log.Info("agent report of a call that ended ignored", "agent", r.Agent, "command", r.CommandID)
		return nil
	}
	select {
	case f.reports <- r:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// applyDone returns apps updated with what a DONE of c says.
func applyDone(apps []model.AgentApplication, c Command) []model.AgentApplication {
	apps = slices.Clone(apps)
	if c.Kind == StopApp { // the app runs nothing now; what it holds stays
		for i := range apps {
			if slices.Contains(c.Applications, apps[i].Name) {
				apps[i].RunningReleaseID = ""
			}
		}
		return apps
	}
	for _, r := range c.Releases {
		i := slices.IndexFunc(apps, func(a model.AgentApplication) bool { return a.Name == r.Application })
		if i < 0 {
			apps = append(apps, model.AgentApplication{Name: r.Application})
			i = len(apps) - 1
		}
		a := &apps[i]
		switch c.Kind {
		case Stage, Arm: // arm stages what was missing
			if !slices.Contains(a.StagedReleaseIDs, r.ReleaseID) {
				a.StagedReleaseIDs = append(slices.Clone(a.StagedReleaseIDs), r.ReleaseID)
			}
		case Commit:
			a.RunningReleaseID = r.ReleaseID
		}
	}
	return apps
}

// Reports is where agents' reports arrive, in the order each agent sent them.
func (f *Fleet) Reports() <-chan Report { return f.reports }

// Send records cmd as outstanding for agent and queues it on the agent's
// session if it is connected; otherwise it goes out when the agent connects.
// Sending a command whose id is already outstanding queues it again (a
// resend) without recording it twice.
func (f *Fleet) Send(agent string, cmd Command) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sendLocked(agent, cmd)
}

func (f *Fleet) sendLocked(agent string, cmd Command) {
	if cmd.Kind != Finish && !slices.ContainsFunc(f.outstanding[agent], func(c Command) bool { return c.ID == cmd.ID }) {
		f.outstanding[agent] = append(f.outstanding[agent], cmd)
	}
	if s := f.sessions[agent]; s != nil {
		s.push(cmd)
	}
}

// Outgoing is a command for an agent.
type Outgoing struct {
	Agent   string
	Command Command
}

// SendAll sends each command as Send does, all at once: an agent that
// takes its command meanwhile sees the others' recorded, so that the
// swarm of a fan-out of stage commands has them all (swarm.go).
func (f *Fleet) SendAll(out []Outgoing) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, o := range out {
		f.sendLocked(o.Agent, o.Command)
	}
}

// Forget drops the outstanding commands of a deployment (its rollbacks
// by command included), for every agent: used when the deployment ends
// and no longer waits for answers.
func (f *Fleet) Forget(deploymentID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for name, cmds := range f.outstanding {
		f.outstanding[name] = slices.DeleteFunc(cmds, func(c Command) bool { return c.DeploymentID == deploymentID })
	}
	delete(f.swarms, deploymentID)
	delete(f.peerIndexes, deploymentID)
}

// Agents returns the agents of env (all if env is empty), sorted by
// environment and name, with their connection state.
func (f *Fleet) Agents(env string) ([]AgentView, error) {
	var recs []*model.Agent
	if err := f.store.View(func(tx model.Tx) error {
		var err error
		recs, err = tx.Agents()
		return err
	}); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []AgentView
	for _, r := range recs {
		v := AgentView{Agent: *r}
		if s := f.sessions[r.Name]; s != nil {
			v.Agent, v.Connected = s.agent, true
		}
		if env == "" || v.Environment == env {
			out = append(out, v)
		}
	}
	slices.SortFunc(out, func(a, b AgentView) int {
		if a.Environment != b.Environment {
			return compare(a.Environment, b.Environment)
		}
		return compare(a.Name, b.Name)
	})
	return out, nil
}

// Connected returns the connected agents of env, sorted by name.
func (f *Fleet) Connected(env string) []AgentView {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []AgentView
	for _, s := range f.sessions {
		if s.agent.Environment == env {
			out = append(out, AgentView{Agent: s.agent, Connected: true})
		}
	}
	slices.SortFunc(out, func(a, b AgentView) int { return compare(a.Name, b.Name) })
	return out
}

// Close closes every session, so that their streams end.
func (f *Fleet) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for name, s := range f.sessions {
		s.close()
		delete(f.sessions, name)
	}
}

func compare(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// errClosed is returned by Next once the session is closed.
var errClosed = fmt.Errorf("agent session closed (replaced by a newer session of the same agent, or the controller is stopping): %w", errkind.Unavailable)

// Revoke cuts agent off: its session is closed, and each command it had
// not answered fails with reason (so that the deployment waiting for it
// fails, naming it, instead of waiting for a reconnect that will be
// refused). Commands sent to it later wait as for any absent agent.
func (f *Fleet) Revoke(agent, reason string) {
	f.mu.Lock()
	if s := f.sessions[agent]; s != nil {
		s.close()
		delete(f.sessions, agent)
	}
	cmds := f.outstanding[agent]
	delete(f.outstanding, agent)
	f.mu.Unlock()
	f.log.Warn("agent revoked; its outstanding commands fail", "agent", agent, "commands", len(cmds))
	for _, c := range cmds {
		r := Report{Agent: agent, CommandID: c.ID, DeploymentID: c.DeploymentID, RollbackAttempt: c.RollbackAttempt, Outcome: CommandFailed, Error: reason}
		f.mu.Lock()
		called := f.deliverLocked(r)
		f.mu.Unlock()
		if !called {
			f.reports <- r
		}
	}
}
