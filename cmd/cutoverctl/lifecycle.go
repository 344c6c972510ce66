package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/durationpb"

	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// This file holds the deployment commands around stage 2: approve, extend
// and rollback, and env rollback.

// databaseNote is printed after every rollback without --with-database.
const databaseNote = "note: the database is NOT rolled back: the SQL that stage 2 ran stays applied (--with-database undoes it)"

// rollbackOptions are the flags of a rollback.
type rollbackOptions struct {
	reason              string
	wait, withDB, force bool
}

// check refuses the combinations of rollback flags that the controller
// would refuse, before anything is sent: --force is about the database
// (it leaves the irreversible migrations applied and undoes the others),
// so it needs --with-database, and a reason for the history and the audit.
func (o rollbackOptions) check() error {
	switch {
	case o.force && !o.withDB:
		return fmt.Errorf("--force goes with --with-database: it undoes the reversible migrations and leaves the irreversible ones applied; a rollback of the fleet alone needs no --force; nothing was sent")
	case o.force && strings.TrimSpace(o.reason) == "":
		return fmt.Errorf("--force needs --reason \"...\": it is recorded in the deployment's history and the audit log; nothing was sent")
	}
	return nil
}

func newDeployApproveCmd(c *cli) *cobra.Command {
	var comment string
	cmd := &cobra.Command{
		Use:   "approve ID",
		Short: "Approve a deployment (environments that require an approval)",
		Long: `Approve a PLANNED, PREPARING or PREPARED deployment. In an environment with
require_approval, continue and start are refused until the deployment is
approved. The approval records who (user@host) and when.`,
		Example: `  cutoverctl deploy approve d-7 --comment "CAB-112 approved"`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return unary(c, cmd, func(ctx context.Context, api cutoverv1.AdminServiceClient) (*cutoverv1.Deployment, error) {
				return api.ApproveDeployment(ctx, &cutoverv1.ApproveDeploymentRequest{Id: args[0], Comment: comment})
			}, formatDeployment)
		},
	}
	cmd.Flags().StringVar(&comment, "comment", "", "recorded with the approval")
	return cmd
}

func newDeployExtendCmd(c *cli) *cobra.Command {
	var by time.Duration
	cmd := &cobra.Command{
		Use:   "extend ID --by DURATION",
		Short: "Move a PREPARED deployment's expiry later",
		Long: `A PREPARED deployment expires prepared_ttl (environment setting, default 96h)
after it was prepared: it becomes EXPIRED and the agents drop what they
staged for it. extend moves the expiry of a PREPARED deployment that has not
expired yet later by --by.`,
		Example: `  cutoverctl deploy extend d-7 --by 24h`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if by <= 0 {
				return fmt.Errorf("--by is required: a positive duration such as 24h")
			}
			return unary(c, cmd, func(ctx context.Context, api cutoverv1.AdminServiceClient) (*cutoverv1.Deployment, error) {
				return api.ExtendDeployment(ctx, &cutoverv1.ExtendDeploymentRequest{Id: args[0], By: durationpb.New(by)})
			}, formatDeployment)
		},
	}
	cmd.Flags().DurationVar(&by, "by", 0, "how much later it expires, e.g. 24h (required)")
	return cmd
}

func newDeployRollbackCmd(c *cli) *cobra.Command {
	var opt rollbackOptions
	cmd := &cobra.Command{
		Use:   "rollback ID",
		Short: "Bring every agent back to the releases that ran before a DEPLOYED deployment",
		Long: `Roll back a DEPLOYED deployment that is what its environment runs now: every
agent swaps current back to the release that ran before (atomically, as a
swap) and restarts it; the deployment ends ROLLED_BACK and the environment's
deployed versions go back. The database is NOT rolled back (the SQL that
stage 2 ran stays applied, and a warning says so when it changed the
schema), unless --with-database: then the down migrations of what the
deployment applied run, newest first: the contract phase's before the
fleet swaps back (the new releases still run and work with the expanded
schema), the expand phase's after (the releases that ran before work
without it), each phase in one transaction. A migration without a down
file, or marked "-- cutover:irreversible", refuses --with-database, naming
it, unless --force --reason: the others are undone, it stays applied.
With --wait, follows it and fails unless it ends ROLLED_BACK.`,
		Example: `  cutoverctl deploy rollback d-7 --reason "checkout broken" --wait
  cutoverctl deploy rollback d-7 --with-database --wait
  cutoverctl deploy rollback d-7 --with-database --force --reason "keep the backfilled table"`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := opt.check(); err != nil {
				return err
			}
			return c.rollback(cmd, args[0], opt)
		},
	}
	cmd.Flags().StringVar(&opt.reason, "reason", "", "why; recorded in the deployment's history (required with --force)")
	cmd.Flags().BoolVar(&opt.wait, "wait", false, "follow the rollback until it ends; fail unless ROLLED_BACK")
	cmd.Flags().BoolVar(&opt.withDB, "with-database", false, "also run the down migrations of what the deployment applied")
	cmd.Flags().BoolVar(&opt.force, "force", false, "with --with-database: leave the irreversible migrations applied and undo the others")
	return cmd
}

func newEnvRollbackCmd(c *cli) *cobra.Command {
	var app, reason string
	var wait bool
	cmd := &cobra.Command{
		Use:   "rollback ENV --app NAME",
		Short: "Roll back the deployment that brought what an application runs now",
		Long: `Find the deployment that brought the version of --app that ENV runs now (its
deployed_versions) and roll it back: see "cutoverctl deploy rollback". Every
application of that deployment goes back. The database is NOT rolled back.`,
		Example: `  cutoverctl env rollback production --app hello --wait`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.api()
			if err != nil {
				return err
			}
			ctx, cancel := c.callCtx(cmd.Context())
			env, err := api.GetEnvironment(ctx, &cutoverv1.GetEnvironmentRequest{Name: args[0]})
			cancel()
			if err != nil {
				return err
			}
			v, ok := env.GetDeployedVersions()[app]
			if !ok || v.GetDeploymentId() == "" {
				return fmt.Errorf("environment %s records no deployment of application %s, so there is nothing to roll back", args[0], app)
			}
			fmt.Fprintf(c.stderr, "rolling back deployment %s (it brought %s %s)\n", v.GetDeploymentId(), app, v.GetVersionLabel())
			return c.rollback(cmd, v.GetDeploymentId(), rollbackOptions{reason: reason, wait: wait})
		},
	}
	cmd.Flags().StringVar(&app, "app", "", "application whose current version to roll back (required)")
	cmd.Flags().StringVar(&reason, "reason", "", "why; recorded in the deployment's history")
	cmd.Flags().BoolVar(&wait, "wait", false, "follow the rollback until it ends; fail unless ROLLED_BACK")
	_ = cmd.MarkFlagRequired("app")
	return cmd
}

// rollback asks for the rollback of deployment id, says that the database
// is not rolled back, and with wait follows it to its end.
func (c *cli) rollback(cmd *cobra.Command, id string, opt rollbackOptions) error {
	api, err := c.api()
	if err != nil {
		return err
	}
	ctx, cancel := c.callCtx(cmd.Context())
	got, err := api.RollbackDeployment(ctx, &cutoverv1.RollbackDeploymentRequest{Id: id, Reason: opt.reason, WithDatabase: opt.withDB, Force: opt.force})
	cancel()
	if err != nil {
		return err
	}
	if !opt.withDB {
		fmt.Fprintln(c.stderr, databaseNote)
	}
	if !opt.wait {
		return c.print(got, func(w io.Writer) { formatDeployment(w, got) })
	}
	// Until it leaves DEPLOYED, or the rollback failed (it stays DEPLOYED with an error).
	return c.followOutcome(cmd.Context(), got, func(d *cutoverv1.Deployment) bool {
		return d.GetState() != cutoverv1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED || d.GetError() != ""
	}, cutoverv1.DeploymentState_DEPLOYMENT_STATE_ROLLED_BACK)
}
