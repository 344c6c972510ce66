package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

func newDeployCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "deploy",
		Aliases: []string{"deployment", "deployments"},
		Short:   "Plan, prepare, continue, start, abort and follow deployments",
		Example: `  cutoverctl deploy create --env production --app hello=v2
  cutoverctl deploy prepare d-7 --wait
  cutoverctl deploy continue d-7 --wait`,
		Long: `A deployment brings one environment to given versions of applications.

  deploy create    plans it (PLANNED)
  deploy prepare   stage 1: build, stage on every agent; nothing running changes (PREPARED)
  deploy continue  stage 2: swap every agent to the staged releases (DEPLOYED)
  deploy start     both stages back to back (the only way when the environment is single stage)
  deploy approve   approve it, when the environment requires an approval
  deploy extend    keep a PREPARED deployment longer before it expires
  deploy rollback  bring every agent back to what ran before a DEPLOYED deployment`,
	}
	cmd.AddCommand(
		newDeployCreateCmd(c),
		newDeployStepCmd(c, stepPrepare),
		newDeployStepCmd(c, stepContinue),
		newDeployStepCmd(c, stepStart),
		newDeployAbortCmd(c),
		newDeployApproveCmd(c),
		newDeployExtendCmd(c),
		newDeployRollbackCmd(c),
		newDeployGetCmd(c),
		newDeployListCmd(c),
		newDeployPlanCmd(c),
		newDeployPackageCmd(c),
		newDeployWatchCmd(c),
	)
	return cmd
}

func newDeployCreateCmd(c *cli) *cobra.Command {
	var env string
	var apps []string
	cmd := &cobra.Command{
		Use:   "create --env ENV --app NAME=LABEL [--app NAME=LABEL ...]",
		Short: "Plan a deployment of applications to an environment",
		Long: `Plan a deployment (PLANNED). Each --app names a registered application and a
label for the version its source directory holds now (a tag, a git sha).
Nothing is built until the deployment is prepared or started.`,
		Example: `  cutoverctl deploy create --env production --app hello=v2
  cutoverctl deploy create --env production --app billing=2024.06.1 --app hello=v2`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			versions, err := parseAppVersions(apps)
			if err != nil {
				return err
			}
			return unary(c, cmd, func(ctx context.Context, api cutoverv1.AdminServiceClient) (*cutoverv1.Deployment, error) {
				return api.CreateDeployment(ctx, &cutoverv1.CreateDeploymentRequest{Environment: env, Applications: versions})
			}, formatDeployment)
		},
	}
	cmd.Flags().StringVar(&env, "env", "", "target environment (required)")
	cmd.Flags().StringArrayVar(&apps, "app", nil, "NAME=LABEL: an application and its version label (repeatable, at least one)")
	_ = cmd.MarkFlagRequired("env")
	return cmd
}

// stepFlags are the options of a step command beyond --wait.
type stepFlags struct {
	force    bool
	reason   string
	atWindow bool
	cancel   bool
	// requirePrepared refuses to stage on front-ends lacking the releases.
	requirePrepared bool
}

// step is one of the deployment commands that start work in the controller
// and may be followed with --wait.
type step struct {
	use, short, long, example string
	call                      func(context.Context, cutoverv1.AdminServiceClient, string, stepFlags) (*cutoverv1.Deployment, error)
	// force: the step takes --force and --reason; schedule: --at-window and --cancel.
	force, schedule bool
	// done reports whether --wait stops at state.
	done func(cutoverv1.DeploymentState) bool
	// success is the state --wait expects to end in.
	success cutoverv1.DeploymentState
}

var (
	stepPrepare = step{
		use:   "prepare ID",
		short: "Stage 1: build and stage the releases on every agent, without touching what runs",
		long: `Start stage 1 of a PLANNED deployment of a two-stage environment: the
controller builds each application and every connected agent of the
environment fetches and materializes the releases. Nothing running changes.
The deployment is PREPARING at once and PREPARED when every agent has staged.
With --wait, follows it (each step and a progress bar per agent on stderr
when it is a terminal, plain lines otherwise), prints a one-line summary
and fails unless it ends PREPARED.`,
		example: `  cutoverctl deploy prepare d-7 --wait`,
		call: func(ctx context.Context, api cutoverv1.AdminServiceClient, id string, _ stepFlags) (*cutoverv1.Deployment, error) {
			return api.PrepareDeployment(ctx, &cutoverv1.PrepareDeploymentRequest{Id: id})
		},
		done: func(s cutoverv1.DeploymentState) bool {
			return s != cutoverv1.DeploymentState_DEPLOYMENT_STATE_PLANNED && s != cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARING
		},
		success: cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED,
	}
	stepContinue = step{
		use:   "continue ID",
		short: "Stage 2: swap every agent to the staged releases and restart",
		long: `Start stage 2 of a PREPARED deployment, in steps: every agent arms (verifies
every file of the staged releases against the manifest and prepares the
swap; a front-end that joined after prepare, or lost its staged files, is
staged first, unless --require-prepared, which refuses instead), the
before_activate hooks run, then the SQL script, then, only once every agent
has armed, every agent swaps together, restarts the application, checks its
health and runs the validate hooks; the after_activate hooks run last (and
also after a failure, where before_activate ran). If any agent fails after
swapping, every agent goes back (ROLLED_BACK); a failure before the swap
changes nothing (FAILED).

Stage 2 runs only inside one of the environment's deployment windows, and
only once approved when the environment requires an approval. Outside every
window the controller refuses and says when the next one opens; --force
--reason "..." overrides (recorded in the history).

--at-window schedules stage 2 for the next window opening instead (now, if
one is open): the deployment stays PREPARED with its scheduled time, and the
controller starts it then, unless stage 2 (predicted from the environment's
earlier runs) would not end before the window closes: then it reschedules it
to the next window long enough, and says why in the history. --cancel
cancels a scheduled continue (the deployment stays PREPARED).

With --wait, follows it (each step and a progress bar per agent on stderr
when it is a terminal, plain lines otherwise), prints a one-line summary
and fails unless it ends DEPLOYED.`,
		example: `  cutoverctl deploy continue d-7 --wait
  cutoverctl deploy continue d-7 --at-window
  cutoverctl deploy continue d-7 --cancel
  cutoverctl deploy continue d-7 --force --reason "hotfix for INC-1234"`,
		call: func(ctx context.Context, api cutoverv1.AdminServiceClient, id string, f stepFlags) (*cutoverv1.Deployment, error) {
			if f.cancel {
				return api.CancelScheduledContinue(ctx, &cutoverv1.CancelScheduledContinueRequest{Id: id})
			}
			return api.ContinueDeployment(ctx, &cutoverv1.ContinueDeploymentRequest{Id: id, Force: f.force, ForceReason: f.reason, AtWindow: f.atWindow,
				RequirePrepared: f.requirePrepared})
		},
		force:    true,
		schedule: true,
		done:     cutoverv1.DeploymentState.Final,
		success:  cutoverv1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED,
	}
	stepStart = step{
		use:   "start ID",
		short: "Run both stages back to back (single stage)",
		long: `Run a PLANNED deployment's two stages back to back: build, stage on every
agent, then swap and restart. This is how single-stage environments deploy.
Like continue, it is refused outside the environment's deployment windows
(unless --force --reason "...") and without an approval when the environment
requires one.
With --wait, follows it (each step and a progress bar per agent on stderr
when it is a terminal, plain lines otherwise), prints a one-line summary
and fails unless it ends DEPLOYED.`,
		example: `  cutoverctl deploy start d-7 --wait
  cutoverctl deploy start d-7 --force --reason "security fix" --wait`,
		call: func(ctx context.Context, api cutoverv1.AdminServiceClient, id string, f stepFlags) (*cutoverv1.Deployment, error) {
			return api.StartDeployment(ctx, &cutoverv1.StartDeploymentRequest{Id: id, Force: f.force, ForceReason: f.reason})
		},
		force:   true,
		done:    cutoverv1.DeploymentState.Final,
		success: cutoverv1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED,
	}
)

func newDeployStepCmd(c *cli, s step) *cobra.Command {
	var wait bool
	var f stepFlags
	cmd := &cobra.Command{
		Use:     s.use,
		Short:   s.short,
		Long:    s.long,
		Example: s.example,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.cancel && (f.force || f.atWindow || wait) {
				return fmt.Errorf("--cancel cancels a scheduled continue; it takes no --force, --at-window or --wait")
			}
			if f.force && f.reason == "" {
				return fmt.Errorf("--force needs --reason \"...\": it is recorded in the deployment's history")
			}
			api, err := c.api()
			if err != nil {
				return err
			}
			ctx, cancel := c.callCtx(cmd.Context())
			got, err := s.call(ctx, api, args[0], f)
			cancel()
			if err != nil {
				return err
			}
			if !wait {
				return c.print(got, func(w io.Writer) { formatDeployment(w, got) })
			}
			return c.followOutcome(cmd.Context(), got, func(d *cutoverv1.Deployment) bool { return s.done(d.GetState()) }, s.success)
		},
	}
	cmd.Flags().BoolVar(&wait, "wait", false, "follow the deployment until this step ends; fail unless it succeeded")
	if s.force {
		cmd.Flags().BoolVar(&f.force, "force", false, "run even though no deployment window is open (needs --reason)")
		cmd.Flags().StringVar(&f.reason, "reason", "", "why --force; recorded in the deployment's history")
	}
	if s.schedule {
		cmd.Flags().BoolVar(&f.atWindow, "at-window", false, "schedule stage 2 for the next window opening instead of now")
		cmd.Flags().BoolVar(&f.cancel, "cancel", false, "cancel a continue scheduled with --at-window")
		cmd.Flags().BoolVar(&f.requirePrepared, "require-prepared", false,
			"refuse, naming them, when a front-end lacks the staged releases (joined after prepare, or lost them) instead of staging them first")
	}
	return cmd
}

// endedError says that deployment d ended in a state other than hoped for.
func endedError(d *cutoverv1.Deployment) error {
	msg := fmt.Sprintf("deployment %s ended %s", d.GetId(), stateName(d.GetState()))
	if d.GetError() != "" {
		msg += ": " + d.GetError()
	}
	return fmt.Errorf("%s", msg)
}

func newDeployAbortCmd(c *cli) *cobra.Command {
	var reason string
	var force bool
	cmd := &cobra.Command{
		Use:   "abort ID",
		Short: "Abort a deployment that has not started stage 2, or end a stuck stage 2 (--force)",
		Long: `Abort a deployment that is PLANNED, PREPARING or PREPARED (ABORTED). Staged
releases are dropped; nothing running changes.

With --force (and a --reason), also end a deployment stuck in stage 2
(ACTIVATING), as if the deadline of the step it is in had passed now: the
agents that have not answered are named; before any swap it is PREPARED
again, every agent disarmed (abort it again to end it); after swaps every
agent that can be reached rolls back, and it ends ROLLED_BACK or FAILED.
A front-end that had not answered commit is rolled back when it comes back.
Refused while the SQL script runs (--sql-timeout bounds it).`,
		Example: `  cutoverctl deploy abort d-7 --reason "wrong build"
  cutoverctl deploy abort d-8 --force --reason "fe-3 hangs in its health check"`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return unary(c, cmd, func(ctx context.Context, api cutoverv1.AdminServiceClient) (*cutoverv1.Deployment, error) {
				return api.AbortDeployment(ctx, &cutoverv1.AbortDeploymentRequest{Id: args[0], Reason: reason, Force: force})
			}, formatDeployment)
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why; recorded in the deployment's history (required with --force)")
	cmd.Flags().BoolVar(&force, "force", false, "also end a stuck stage 2 (ACTIVATING) without waiting for the agents that do not answer")
	return cmd
}

func newDeployGetCmd(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "get ID",
		Short: "Show one deployment: state, applications, agents, timings, history",
		Example: `  cutoverctl deploy get d-7
  cutoverctl deploy get d-7 -o json | jq -r .state`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return unary(c, cmd, func(ctx context.Context, api cutoverv1.AdminServiceClient) (*cutoverv1.Deployment, error) {
				return api.GetDeployment(ctx, &cutoverv1.GetDeploymentRequest{Id: args[0]})
			}, formatDeployment)
		},
	}
}

func newDeployListCmd(c *cli) *cobra.Command {
	var env string
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List deployments, newest first",
		Example: `  cutoverctl deploy list --env production`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return unary(c, cmd, func(ctx context.Context, api cutoverv1.AdminServiceClient) (*cutoverv1.ListDeploymentsResponse, error) {
				return api.ListDeployments(ctx, &cutoverv1.ListDeploymentsRequest{Environment: env})
			}, formatDeployments)
		},
	}
	cmd.Flags().StringVar(&env, "env", "", "only the deployments of this environment")
	return cmd
}

func newDeployPlanCmd(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:     "plan ID",
		Short:   "Show the SQL script that continue will run",
		Example: `  cutoverctl deploy plan d-7 > d-7.sql`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return unary(c, cmd, func(ctx context.Context, api cutoverv1.AdminServiceClient) (*cutoverv1.DeploymentPlan, error) {
				return api.GetDeploymentPlan(ctx, &cutoverv1.GetDeploymentPlanRequest{Id: args[0]})
			}, formatPlan)
		},
	}
}

func newDeployWatchCmd(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "watch ID",
		Short: "Follow a deployment until it reaches a final state",
		Long: `Follow a deployment until it is DEPLOYED, FAILED, ABORTED, EXPIRED or
ROLLED_BACK, showing each step as it happens and, per agent, its state and
the bytes it received of those it must hold. On a terminal, each agent has a
progress bar with its transfer rate, redrawn in place; otherwise (a pipe, a
log) one plain line per change. With -o json, prints each event as one line
of JSON; with -o yaml, as one YAML document.`,
		Example: `  cutoverctl deploy watch d-7
  cutoverctl deploy watch d-7 | tee d-7.log        # plain lines
  cutoverctl deploy watch d-7 -o json | jq -c '.deployment.state'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.api()
			if err != nil {
				return err
			}
			ctx, cancel := c.callCtx(cmd.Context())
			got, err := api.GetDeployment(ctx, &cutoverv1.GetDeploymentRequest{Id: args[0]})
			cancel()
			if err != nil {
				return err
			}
			fctx, fcancel := c.followCtx(cmd.Context())
			defer fcancel()
			_, err = c.follow(fctx, got, cutoverv1.DeploymentState.Final, c.stdout)
			return err
		},
	}
}
