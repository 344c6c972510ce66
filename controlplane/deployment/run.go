package deployment

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/cutover-dev/cutover/controlplane/fleet"
	"github.com/cutover-dev/cutover/controlplane/migrate"
	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/pkg/errkind"
	"github.com/cutover-dev/cutover/pkg/logging"
)

// Run resumes the deployments that were PREPARING or ACTIVATING, then routes
// the agents' reports until ctx ends, while a timer task expires and starts
// PREPARED deployments when their time comes (timed.go); it waits for the
// goroutines it started before it returns.
func (s *Service) Run(ctx context.Context) error {
	defer s.wg.Wait()
	if err := s.resume(ctx); err != nil {
		return err
	}
	s.wg.Go(func() { s.runTimers(ctx) })
	var flush <-chan time.Time // the held progress is due (progress.go); nil: no timer set
	var copiesChanged <-chan struct{}
	if s.copies != nil {
		copiesChanged = s.copies.Changed(ctx)
	}
	var recheck <-chan time.Time // a deployment waits for copies (copies.go); nil: none waits
	var batch []fleet.Report
	for {
		select {
		case <-ctx.Done():
			s.FlushProgress()
			return nil
		case <-copiesChanged:
			recheck = nil
			s.recheckCopies()
		case <-recheck:
			recheck = nil
			s.recheckCopies()
		case <-s.fleet.Joins():
			s.stageJoined(s.fleet.Joined())
		case <-flush:
			flush = nil
			s.FlushProgress()
		case r := <-s.fleet.Reports():
			batch = append(batch[:0], r)
		more: // the reports that arrived meanwhile: stored together (handleReports)
			for len(batch) < maxReportBatch {
				select {
				case r := <-s.fleet.Reports():
					batch = append(batch, r)
				default:
					break more
				}
			}
			for i, err := range s.handleReports(batch) {
				r := batch[i]
				switch {
				case errors.Is(err, errkind.NotFound):
					s.log.Warn("agent report for an unknown deployment ignored", "agent", r.Agent, "deployment", r.DeploymentID, "command", r.CommandID)
				case err != nil:
					s.logFor(r.DeploymentID).Error("handle agent report", "agent", r.Agent, "err", err)
				}
			}
		}
		if flush == nil && s.progressPending() {
			flush = time.After(s.progressFlush)
		}
		if recheck == nil && s.copiesAwaited() {
			recheck = time.After(copiesRetry)
		}
	}
}

func (s *Service) resume(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.runCtx = ctx
	var ds []*model.Deployment
	if err := s.store.View(func(tx model.Tx) error {
		var err error
		ds, err = tx.Deployments("")
		return err
	}); err != nil {
		return fmt.Errorf("resume deployments: %w", err)
	}
	for _, d := range ds {
		if d.State == model.Deployed && d.Package != nil && d.Package.Pending {
			s.log.Info("running the package step again", "deployment", d.ID, "environment", d.Environment)
			s.spawnPackage(d.ID)
		}
		if d.State == model.Prepared { // stagings in the background not answered yet
			s.send(pendingCommands(d))
			continue
		}
		if d.State.Final() { // front-ends that left commit unanswered: brought to the outcome when they come back
			s.send(outcomeCommands(d))
		}
		if d.State != model.Preparing && d.State != model.Activating && !(d.State == model.Deployed && d.RollingBack) {
			continue
		}
		s.log.Info("resuming deployment", "deployment", d.ID, "environment", d.Environment, "state", d.State)
		if d.State == model.Preparing && !built(d) {
			s.spawnBuild(d.ID)
			continue
		}
		if needsSQL(d) {
			s.spawnSQL(d.ID, true)
			continue
		}
		if dbStep(d) != "" {
			s.spawnDB(d.ID, true)
			continue
		}
		if d.State == model.Preparing {
			ended, err := s.resumeStaged(d)
			if err != nil {
				s.log.Error("resume deployment", "deployment", d.ID, "err", err)
			}
			if ended {
				continue
			}
		}
		s.send(pendingCommands(d))
	}
	return nil
}

func built(d *model.Deployment) bool {
	for _, a := range d.Applications {
		if a.ReleaseID == "" {
			return false
		}
	}
	return true
}

// spawnBuild starts the builds of a PREPARING deployment, if Run is running
// (otherwise Run's resume starts them). Call with s.mu held.
func (s *Service) spawnBuild(id string) {
	if s.runCtx == nil {
		return
	}
	ctx, cancel := context.WithCancel(s.runCtx)
	s.cancels[id] = cancel
	s.wg.Go(func() {
		defer func() {
			s.mu.Lock()
			delete(s.cancels, id)
			s.mu.Unlock()
			cancel()
		}()
		if err := s.buildAndStage(ctx, id); err != nil && ctx.Err() == nil {
			s.logFor(id).Error("stage 1", "err", err)
		}
	})
}

// buildAndStage builds every application of deployment id, stores the
// releases and sends the stage commands. A failed build fails the
// deployment; nothing is sent to agents.
func (s *Service) buildAndStage(ctx context.Context, id string) error {
	d, err := s.Get(ctx, id)
	if err != nil {
		return err
	}
	log := s.log.With(logging.KeyDeployment, id, logging.KeyEnvironment, d.Environment)
	start := s.clock()
	ids := map[string]string{}
	migrations := map[string][]migrate.File{}
	for _, app := range d.Applications {
		var a *model.Application
		if err := s.store.View(func(tx model.Tx) error {
			a, err = tx.Application(app.Name)
			return err
		}); err != nil {
			return s.failStage1(id, fmt.Sprintf("application %s: %v", app.Name, err))
		}
		log.Info("building", "application", app.Name, "source_dir", a.SourceDir)
		res, err := s.builder.Build(ctx, app.Name, a.SourceDir)
		if ctx.Err() != nil {
			return ctx.Err() // aborted or stopping; a restart builds again
		}
		if err != nil {
			return s.failStage1(id, fmt.Sprintf("build of application %s failed; nothing was sent to the agents: %s", app.Name, kindless(err)))
		}
		m := res.Manifest
		var files int64
		for _, f := range m.Files {
			if f.IsRegular() {
				files++
			}
		}
		rel := &model.Release{ID: res.ReleaseID, Application: app.Name, SizeBytes: m.Size(), FileCount: files,
			ChunkCount: int64(len(m.ChunkIDs())), CreateTime: s.clock()}
		err = s.store.Update(func(tx model.Tx) error { return tx.PutRelease(rel, res.ManifestBytes) })
		if cerr := res.Cleanup(); cerr != nil {
			log.Warn("remove build scratch dir", "application", app.Name, "err", cerr)
		}
		if err != nil {
			return fmt.Errorf("store release of %s: %w", app.Name, err)
		}
		s.metrics.builds.WithLabelValues(app.Name).Observe(res.Duration.Seconds())
		ids[app.Name] = res.ReleaseID
		migrations[app.Name] = res.Migrations
		log.Info("built", "application", app.Name, "release", res.ReleaseID, "bytes", m.Size(), "duration", res.Duration)
	}
	plan, reason := s.planSQL(ctx, d, migrations)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if plan == nil {
		return s.failStage1(id, reason)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	var out []fleet.Outgoing
	d, err = s.update(id, func(tx model.Tx, d *model.Deployment) error {
		if d.State != model.Preparing {
			return errUnchanged // aborted meanwhile
		}
		if err := storeSQLPlan(tx, d, plan); err != nil {
			return err
		}
		env, err := tx.Environment(d.Environment)
		if err != nil {
			return err
		}
		for i := range d.Applications {
			a := &d.Applications[i]
			a.ReleaseID = ids[a.Name]
			a.PreviousReleaseID = env.DeployedVersions[a.Name].ReleaseID
		}
		d.BuildDuration = s.clock().Sub(start)
		d.StageRate = env.StageRate
		for i := range d.Agents {
			a := &d.Agents[i]
			a.Command = commandID(d, fleet.Stage, a.Name)
			out = append(out, fleet.Outgoing{Agent: a.Name, Command: stageCommand(d, a.Command)})
		}
		return nil
	})
	if err != nil || d == nil {
		return err
	}
	s.send(out)
	s.watchers.publish(d)
	return nil
}

// kindless returns err's message without the trailing error kind that
// wrapping adds (": failed precondition"), for messages shown in a record.
func kindless(err error) string {
	msg := err.Error()
	for e := errors.Unwrap(err); e != nil; e = errors.Unwrap(e) {
		if errors.Unwrap(e) == nil {
			msg = strings.TrimSuffix(msg, ": "+e.Error())
		}
	}
	return msg
}

// failStage1 ends a PREPARING deployment as FAILED with reason.
func (s *Service) failStage1(id, reason string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := s.update(id, func(tx model.Tx, d *model.Deployment) error {
		if d.State != model.Preparing {
			return errUnchanged
		}
		transition(d, model.Failed, s.clock(), ControllerActor, reason)
		return nil
	})
	if d != nil {
		s.finished(d)
	}
	return err
}

// handleReport is handleReports of r alone.
func (s *Service) handleReport(r fleet.Report) error {
	return s.handleReports([]fleet.Report{r})[0]
}

// handleReports records agents' reports in their deployments, in order,
// and takes the steps that follow; it returns the error of each. A
// PROGRESS of stage or arm is only held, to be stored with the
// deployment's next write (progress.go); the reports that end no step are
// stored without reading the other agents, those of a run together
// (alone.go, storeAlone); each of the others reads and writes its whole
// deployment (handleWhole).
func (s *Service) handleReports(rs []fleet.Report) []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	errs := make([]error, len(rs))
	for i := 0; i < len(rs); i++ {
		i += s.storeAlone(rs[i:], errs[i:])
		if i < len(rs) {
			errs[i] = s.handleWhole(rs[i])
		}
	}
	return errs
}

// handleWhole records r in its deployment, read and written whole, and
// takes the step that follows. Call with s.mu held.
func (s *Service) handleWhole(r fleet.Report) error {
	var out []fleet.Outgoing
	ended, saved, rollbackFailed := false, false, false
	d, err := s.update(r.DeploymentID, func(tx model.Tx, d *model.Deployment) error {
		if msg := applyOutcomeReport(d, r); msg != "" { // a front-end that came back
			note(d, s.clock(), ControllerActor, msg)
			s.log.Info("front-end brought to the outcome", "deployment", d.ID, "environment", d.Environment, "agent", r.Agent, "event", msg)
			return nil
		}
		counted := savedCounted(d, r.Agent)
		kind := phase(d)
		if !applyReport(d, r) {
			return errUnchanged
		}
		recordStepTime(d, r, kind, s.clock())
		held := finishes(d, r)
		saved = !counted && savedCounted(d, r.Agent)
		if d.State == model.Prepared && r.Outcome.Final() { // a staging in the background ended
			agents, err := envAgents(tx, d.Environment)
			if err != nil {
				return err
			}
			if msg := lateReport(d, r.Agent, agents); msg != "" {
				note(d, s.clock(), ControllerActor, msg)
			}
			if err := s.predictFor(tx, d); err != nil { // fewer bytes missing
				return err
			}
		}
		before, byCommand := d.State, d.State == model.Deployed && d.RollingBack
		var err error
		out, err = s.take(tx, d, next(d))
		out = append(held, out...)
		ended = d.State != before && d.State.Final()
		rollbackFailed = byCommand && d.State == model.Deployed && !d.RollingBack
		return err
	})
	if err != nil || d == nil {
		return err
	}
	if saved {
		s.saved(d.Environment, r.ReusedBytes)
	}
	if rollbackFailed {
		s.metrics.rollbacks.WithLabelValues(d.Environment, resultFailed).Inc()
	}
	s.afterStep(d, out, ended)
	return nil
}

// afterStep does what follows a committed step of d (an agent's report
// taken, the SQL step's end, a step ended at its deadline): send out,
// start the SQL step if d entered it, watch the expiry of a deployment
// PREPARED (again), and, if the step ended d, what follows its end
// (finished); else tell watchers. Call with s.mu held.
func (s *Service) afterStep(d *model.Deployment, out []fleet.Outgoing, ended bool) {
	s.send(out)
	if needsSQL(d) {
		s.spawnSQL(d.ID, false)
	}
	if dbStep(d) != "" {
		s.spawnDB(d.ID, false)
	}
	if d.State == model.Prepared {
		s.poke()
	}
	if ended {
		s.finished(d)
		return
	}
	s.watchers.publish(d)
}

// take applies st to d inside tx and returns the commands to send.
func (s *Service) take(tx model.Tx, d *model.Deployment, st step) ([]fleet.Outgoing, error) {
	now := s.clock()
	if d.State == model.Deployed {
		return s.endRollback(tx, d, st, now)
	}
	if len(st.rollback) > 0 {
		d.RollingBack, d.Error = true, st.reason
		d.StepTime = now // the swap-back has a commit deadline of its own
		var out []fleet.Outgoing
		for i := range d.Agents {
			a := &d.Agents[i]
			for _, n := range st.rollback {
				if a.Name == n {
					a.Command = commandID(d, fleet.Rollback, n)
					out = append(out, fleet.Outgoing{Agent: n, Command: fleet.Command{Kind: fleet.Rollback, ID: a.Command, DeploymentID: d.ID}})
				}
			}
		}
		s.log.Warn("activation failed; rolling back", "deployment", d.ID, "environment", d.Environment, "agents", st.rollback, "reason", st.reason)
		return out, nil
	}
	if d.State == model.Activating {
		switch {
		case st.advance:
			return s.advance(tx, d)
		case st.to != "":
			return s.endStage2(tx, d, st.to, st.reason)
		}
		return nil, nil
	}
	switch st.to {
	case "":
		return nil, nil
	case model.Prepared:
		env, err := tx.Environment(d.Environment)
		if err != nil {
			return nil, err
		}
		agents, err := envAgents(tx, d.Environment)
		if err != nil {
			return nil, err
		}
		if s.waitCopies(d, now) {
			return nil, nil
		}
		transition(d, model.Prepared, now, ControllerActor, preparedSummary(d, agents))
		ttl := PreparedTTL(env)
		d.ExpireTime, d.PreparedTTL = now.Add(ttl), ttl
		d.TransferDuration = now.Sub(d.PrepareTime) - d.BuildDuration
		if err := s.predictFor(tx, d); err != nil {
			return nil, err
		}
		s.poke() // a new expiry to watch
		if !d.SingleStage {
			// Front-ends that connected during stage 1 are staged now, in the background.
			var out []fleet.Outgoing
			for _, v := range s.fleet.Connected(d.Environment) {
				if slices.ContainsFunc(d.Agents, func(a model.DeploymentAgent) bool { return a.Name == v.Name }) {
					continue
				}
				if cmd, msg := lateStage(d, v); msg != "" {
					note(d, now, ControllerActor, msg)
					if cmd != nil {
						out = append(out, fleet.Outgoing{Agent: v.Name, Command: *cmd})
					}
				}
			}
			return out, nil
		}
		closed, err := checkWindowAfterStage1(d, env, now)
		if err != nil {
			return nil, err
		}
		if closed != "" {
			transition(d, model.Failed, now, ControllerActor, closed)
			s.log.Warn("stage 1 outlasted the deployment window; not swapping", "deployment", d.ID, "environment", d.Environment)
			return nil, nil
		}
		connected := s.fleet.Connected(d.Environment)
		known, err := knownAgents(tx)
		if err != nil {
			return nil, err
		}
		if problems := checkActivatable(d, connected, known, false); problems != "" {
			transition(d, model.Failed, now, ControllerActor, "cannot activate: "+problems+"; every front-end runs what it ran before")
			return nil, nil
		}
		return s.beginActivation(tx, d, connected, ControllerActor)
	}
	transition(d, st.to, now, ControllerActor, st.reason)
	return nil, nil
}

// logFor returns the service's logger with deployment id and its
// environment (read from the store; left out if the deployment cannot be
// read), for lines about a deployment where only its id is at hand.
func (s *Service) logFor(id string) *slog.Logger {
	log := s.log.With(logging.KeyDeployment, id)
	var env string
	_ = s.store.View(func(tx model.Tx) error {
		d, err := tx.Deployment(id)
		if err == nil {
			env = d.Environment
		}
		return nil
	})
	if env != "" {
		log = log.With(logging.KeyEnvironment, env)
	}
	return log
}
