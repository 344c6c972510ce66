package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

func newEnvReconcileCmd(c *cli) *cobra.Command {
	var reason string
	var wait bool
	cmd := &cobra.Command{
		Use:   "reconcile ENV",
		Short: "Bring the drifted front-ends back to the releases the environment records",
		Long: `A front-end drifts when it runs, for an application, another release than
the one its environment records (its deployed versions): a host restored from
a backup, a change by hand, a commit or a rollback it missed. agent list shows
which (DRIFT), and how.
reconcile starts a reconcile deployment: stage 2 only, of the recorded
releases, on the drifted front-ends that are connected and on no other:
each stages what it lacks, then all swap (with the releases' hooks). The
environment's records do not change. It does nothing when no front-end
drifted. With --wait, follows it and fails unless it ends DEPLOYED.`,
		Example: `  cutoverctl agent list --env production
  cutoverctl env reconcile production --wait`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.api()
			if err != nil {
				return err
			}
			ctx, cancel := c.callCtx(cmd.Context())
			res, err := api.ReconcileEnvironment(ctx, &cutoverv1.ReconcileEnvironmentRequest{Environment: args[0], Reason: reason})
			cancel()
			if err != nil {
				return err
			}
			if len(res.GetNotConnected()) > 0 {
				fmt.Fprintf(c.stderr, "left out, drifted but not connected: %s; reconcile again once they are\n", strings.Join(res.GetNotConnected(), ", "))
			}
			d := res.GetDeployment()
			if d == nil {
				return c.print(res, func(w io.Writer) { fmt.Fprintf(w, "no front-end of %s drifted: nothing to do\n", args[0]) })
			}
			fmt.Fprintf(c.stderr, "reconciling %s with deployment %s\n", strings.Join(res.GetAgents(), ", "), d.GetId())
			if !wait {
				return c.print(res, func(w io.Writer) { formatDeployment(w, d) })
			}
			return c.followOutcome(cmd.Context(), d, func(d *cutoverv1.Deployment) bool { return d.GetState().Final() },
				cutoverv1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED)
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why; recorded in the reconcile deployment's history")
	cmd.Flags().BoolVar(&wait, "wait", false, "follow the reconcile until it ends; fail unless DEPLOYED")
	return cmd
}
