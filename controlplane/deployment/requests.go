package deployment

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/cutover-dev/cutover/controlplane/fleet"
	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/pkg/appspec"
	"github.com/cutover-dev/cutover/pkg/errkind"
)

// Create plans a deployment of apps to env (PLANNED). Errors:
// InvalidArgument for a bad name, no application or one named twice;
// NotFound for an unknown environment or application.
func (s *Service) Create(ctx context.Context, actor, env string, apps []AppVersion) (*model.Deployment, error) {
	if err := appspec.ValidName(env); err != nil {
		return nil, fmt.Errorf("environment: %w", err)
	}
	if len(apps) == 0 {
		return nil, fmt.Errorf("a deployment needs at least one application (name=version): %w", errkind.InvalidArgument)
	}
	seen := map[string]bool{}
	for _, a := range apps {
		if err := appspec.ValidName(a.Name); err != nil {
			return nil, fmt.Errorf("application: %w", err)
		}
		if seen[a.Name] {
			return nil, fmt.Errorf("application %s is named twice; name each application once: %w", a.Name, errkind.InvalidArgument)
		}
		seen[a.Name] = true
	}
	var d *model.Deployment
	err := s.store.Update(func(tx model.Tx) error {
		if _, err := tx.Environment(env); err != nil {
			return err
		}
		for _, a := range apps {
			if _, err := tx.Application(a.Name); err != nil {
				return err
			}
		}
		id, err := tx.NextDeploymentID()
		if err != nil {
			return err
		}
		now := s.clock()
		d = &model.Deployment{ID: id, Environment: env, State: model.Planned, CreateTime: now,
			History: []model.Transition{{State: model.Planned, Time: now, Actor: actor, Message: "created"}}}
		for _, a := range apps {
			d.Applications = append(d.Applications, model.DeploymentApplication{Name: a.Name, VersionLabel: a.VersionLabel})
		}
		return tx.PutDeployment(d)
	})
	if err != nil {
		return nil, err
	}
	s.log.Info("deployment planned", "deployment", d.ID, "environment", env, "actor", actor)
	return d, nil
}

// Get returns a deployment. NotFound if unknown.
func (s *Service) Get(ctx context.Context, id string) (*model.Deployment, error) {
	var d *model.Deployment
	err := s.store.View(func(tx model.Tx) error {
		var err error
		d, err = tx.Deployment(id)
		return err
	})
	return d, err
}

// List returns the deployments of env (all if empty), newest first.
// NotFound for an unknown environment.
func (s *Service) List(ctx context.Context, env string) ([]*model.Deployment, error) {
	var ds []*model.Deployment
	err := s.store.View(func(tx model.Tx) error {
		if env != "" {
			if _, err := tx.Environment(env); err != nil {
				return err
			}
		}
		var err error
		ds, err = tx.Deployments(env)
		return err
	})
	return ds, err
}

// Prepare starts stage 1 of a PLANNED deployment of a two-stage environment.
// Errors: NotFound; FailedPrecondition if the environment is single-stage,
// the deployment is not PLANNED, another deployment of the environment is
// busy or no agent of the environment is connected.
func (s *Service) Prepare(ctx context.Context, actor, id string) (*model.Deployment, error) {
	return s.begin(actor, id, false, ContinueOptions{})
}

// Start runs both stages back to back. Same errors as Prepare, except that
// the environment may be single-stage; also InvalidArgument for
// inconsistent options (a force without reason, at_window) and
// FailedPrecondition when the deployment needs an approval or no
// deployment window is open (unless opt.Force).
func (s *Service) Start(ctx context.Context, actor, id string, opt ContinueOptions) (*model.Deployment, error) {
	if opt.AtWindow {
		return nil, fmt.Errorf("at_window applies to continue only: start runs stage 1 first, which may take long; prepare, then continue at the window; nothing was changed: %w", errkind.InvalidArgument)
	}
	if err := opt.validate(); err != nil {
		return nil, err
	}
	return s.begin(actor, id, true, opt)
}

func (s *Service) begin(actor, id string, single bool, opt ContinueOptions) (*model.Deployment, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := s.update(id, func(tx model.Tx, d *model.Deployment) error {
		env, err := tx.Environment(d.Environment)
		if err != nil {
			return err
		}
		others, err := tx.Deployments(d.Environment)
		if err != nil {
			return err
		}
		if single {
			err = checkStartable(d, others, "start")
		} else {
			err = checkPrepare(d, env, others)
		}
		if err != nil {
			return err
		}
		if single {
			if err := checkApproval(d, env); err != nil {
				return err
			}
			forced, err := checkWindow(d, env, s.clock(), opt, "start")
			if err != nil {
				return err
			}
			if forced != "" {
				note(d, s.clock(), actor, forced)
			}
			d.StartForced = opt.Force
		}
		connected := s.fleet.Connected(d.Environment)
		if len(connected) == 0 {
			return fmt.Errorf("no agent of environment %s is connected: start cutover-agent --environment %s on its front-ends, then retry; deployment %s is unchanged: %w",
				d.Environment, d.Environment, d.ID, errkind.FailedPrecondition)
		}
		for _, a := range connected {
			d.Agents = append(d.Agents, model.DeploymentAgent{Name: a.Name, State: model.AgentPending})
		}
		d.SingleStage = single
		msg := fmt.Sprintf("stage 1: build, then stage on %d agents", len(connected))
		if single {
			msg = fmt.Sprintf("single stage: prepare on %d agents, then continue at once", len(connected))
		}
		known, err := tx.Agents()
		if err != nil {
			return err
		}
		if left := leftOut(known, connected, d.Environment); len(left) > 0 {
			msg += fmt.Sprintf(" (left out, not connected: %s)", strings.Join(left, ", "))
		}
		transition(d, model.Preparing, s.clock(), actor, msg)
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.log.Info("deployment preparing", "deployment", d.ID, "environment", d.Environment, "actor", actor, "agents", len(d.Agents))
	s.spawnBuild(d.ID)
	s.watchers.publish(d)
	return d, nil
}

// Continue starts stage 2 of a PREPARED deployment, or with opt.AtWindow
// schedules it for the next window opening. On a deployment whose contract
// phase stopped (sqlphases.go), it resumes that phase where it stopped. Errors: NotFound;
// InvalidArgument for inconsistent options; FailedPrecondition if it is
// not PREPARED, has expired, needs an approval, no deployment window is
// open (unless opt.Force), or an agent is not connected or lacks a
// release.
func (s *Service) Continue(ctx context.Context, actor, id string, opt ContinueOptions) (*model.Deployment, error) {
	if err := opt.validate(); err != nil {
		return nil, err
	}
	if opt.AtWindow {
		return s.schedule(actor, id, opt.RequirePrepared)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []fleet.Outgoing
	d, err := s.update(id, func(tx model.Tx, d *model.Deployment) error {
		now := s.clock()
		env, err := tx.Environment(d.Environment)
		if err != nil {
			return err
		}
		if d.State == model.Activating && d.Step == model.StepContract && d.ContractError != "" {
			forced, err := checkWindow(d, env, now, opt, "continue")
			if err != nil {
				return err
			}
			resumeContract(d, now, actor, forced)
			return nil
		}
		if err := checkContinue(d, env, now); err != nil {
			return err
		}
		forced, err := checkWindow(d, env, now, opt, "continue")
		if err != nil {
			return err
		}
		if forced != "" {
			note(d, now, actor, forced)
		}
		d.RequirePrepared = opt.RequirePrepared || env.RequirePrepared
		out, err = s.startStage2(tx, d, actor)
		return err
	})
	if err != nil {
		return nil, err
	}
	s.log.Info("deployment activating", "deployment", d.ID, "environment", d.Environment, "actor", actor, "sql_migrations", d.SQLPending)
	s.send(out)
	if needsSQL(d) {
		s.spawnSQL(d.ID, false)
	}
	if dbStep(d) != "" {
		s.spawnDB(d.ID, false) // runDB resumes a contract run again itself
	}
	s.watchers.publish(d)
	return d, nil
}

// startStage2 checks that every agent can take stage 2 and begins it,
// returning the commands to send. FailedPrecondition, d unchanged, if an
// agent that staged is not connected, or (d.RequirePrepared) a connected
// agent lacks a release.
func (s *Service) startStage2(tx model.Tx, d *model.Deployment, actor string) ([]fleet.Outgoing, error) {
	connected := s.fleet.Connected(d.Environment)
	known, err := knownAgents(tx)
	if err != nil {
		return nil, err
	}
	if problems := checkActivatable(d, connected, known, d.RequirePrepared); problems != "" {
		hint := "reconnect the agents, or remove those gone for good (`cutoverctl agent remove NAME`), or abort it and prepare a new deployment"
		if d.RequirePrepared {
			hint = "wait for the front-ends that connected late to be staged in the background, or continue without require_prepared (and with the environment's require_prepared off) to stage on them inside the window, or stop those agents"
		}
		return nil, fmt.Errorf("deployment %s cannot continue: %s; %s; it stays PREPARED: %w",
			d.ID, problems, hint, errkind.FailedPrecondition)
	}
	if err := s.predictFor(tx, d); err != nil { // the one to compare stage 2 with
		return nil, err
	}
	return s.beginActivation(tx, d, connected, actor)
}

// Abort ends a PLANNED, PREPARING or PREPARED deployment (ABORTED) and has
// the agents drop what they staged for it. Errors: NotFound;
// FailedPrecondition once stage 2 started or the deployment ended.
func (s *Service) Abort(ctx context.Context, actor, id, reason string) (*model.Deployment, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := s.update(id, func(tx model.Tx, d *model.Deployment) error {
		if err := checkAbort(d); err != nil {
			return err
		}
		msg := "aborted by " + actor
		if reason != "" {
			msg += ": " + reason
		}
		transition(d, model.Aborted, s.clock(), actor, msg)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if cancel := s.cancels[id]; cancel != nil {
		cancel()
	}
	s.finished(d)
	return d, nil
}

// knownAgents returns the names of the agents the controller knows (not
// removed), connected or not.
func knownAgents(tx model.Tx) (map[string]bool, error) {
	all, err := tx.Agents()
	if err != nil {
		return nil, err
	}
	out := make(map[string]bool, len(all))
	for _, a := range all {
		out[a.Name] = true
	}
	return out, nil
}

// leftOut returns the names of the agents of env that the controller knows
// but that are not connected.
func leftOut(known []*model.Agent, connected []fleet.AgentView, env string) []string {
	var out []string
	for _, a := range known {
		if a.Environment == env && !slices.ContainsFunc(connected, func(c fleet.AgentView) bool { return c.Name == a.Name }) {
			out = append(out, a.Name)
		}
	}
	return out
}
