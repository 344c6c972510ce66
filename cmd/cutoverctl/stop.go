package main

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// stopCallTimeout bounds `app stop` when --timeout is not given: the
// controller waits up to 30 s for each agent (in parallel).
const stopCallTimeout = 45 * time.Second

func newAppStopCmd(c *cli) *cobra.Command {
	var env, reason string
	var agents []string
	cmd := &cobra.Command{
		Use:   "stop APP --environment E --reason TEXT [--agent NAME]...",
		Short: "Stop an application on purpose on front-ends (it stays stopped across agent restarts)",
		Long: `Stop application APP on the front-ends of environment E: on each, the agent
removes the app's current link and stops its process. Apps outlive the agent,
and a restarted agent starts only what current points at, so the app stays
stopped until you start it again. Its staged releases stay on the front-end.

Without --agent, every connected agent of E stops it; with --agent (repeat it
for several), only those, and each must be connected: if one is not, nothing
is sent to any agent. Stopping an app that runs nothing is fine.

The front-ends then run nothing for APP while E records a release for it:
they drift (agent list shows DRIFT). To start it again, run
` + "`cutoverctl env reconcile E`" + `, or deploy it. --reason is required and
recorded in the audit log. Needs the deployer role on E.

Prints one line per agent; exits 1 if any agent did not stop it.`,
		Example: `  cutoverctl app stop billing --environment production --agent fe-2 --reason "INC-42: leaks memory"
  cutoverctl app stop billing --environment staging --reason "freeze staging"
  cutoverctl env reconcile production   # start it again`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.api()
			if err != nil {
				return err
			}
			ctx, cancel := c.callCtxWithin(cmd.Context(), stopCallTimeout)
			defer cancel()
			res, err := api.StopApplication(ctx, &cutoverv1.StopApplicationRequest{
				Environment: env, Application: args[0], Agents: agents, Reason: reason})
			if err != nil {
				return err
			}
			if err := c.print(res, func(w io.Writer) { formatStopResults(w, args[0], res) }); err != nil {
				return err
			}
			if n := stopFailures(res); n > 0 {
				return fmt.Errorf("%d of %d agents did not stop %s (see above); the others did: run the same command again with --agent for the ones that failed",
					n, len(res.GetResults()), args[0])
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&env, "environment", "", "the environment of the front-ends (required)")
	cmd.Flags().StringArrayVar(&agents, "agent", nil, "an agent to stop it on (repeatable); default: every connected agent of the environment")
	cmd.Flags().StringVar(&reason, "reason", "", "why; recorded in the audit log (required)")
	cmd.Flags().SetNormalizeFunc(envAlias)
	_ = cmd.MarkFlagRequired("environment")
	_ = cmd.MarkFlagRequired("reason")
	return cmd
}

// formatStopResults prints one line per agent: "fe-1  stopped hello" or
// "fe-2  FAILED: why".
func formatStopResults(w io.Writer, app string, res *cutoverv1.StopApplicationResponse) {
	for _, r := range res.GetResults() {
		if r.GetError() == "" {
			fmt.Fprintf(w, "%s\tstopped %s\n", r.GetAgent(), app)
		} else {
			fmt.Fprintf(w, "%s\tFAILED: %s\n", r.GetAgent(), r.GetError())
		}
	}
}

// stopFailures counts the agents that did not stop the app.
func stopFailures(res *cutoverv1.StopApplicationResponse) int {
	n := 0
	for _, r := range res.GetResults() {
		if r.GetError() != "" {
			n++
		}
	}
	return n
}
