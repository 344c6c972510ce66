package main

import (
	"context"

	"github.com/spf13/cobra"

	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

func newAgentsCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "agents",
		Aliases: []string{"agent"},
		Short:   "Show the front-ends' agents",
		Example: `  cutoverctl agents list --env production`,
	}
	var env string
	list := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List agents: connected or not, and per application what runs and what is staged",
		Example: `  cutoverctl agents list
  cutoverctl agents list --env production`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return unary(c, cmd, func(ctx context.Context, api cutoverv1.AdminServiceClient) (*cutoverv1.ListAgentsResponse, error) {
				return api.ListAgents(ctx, &cutoverv1.ListAgentsRequest{Environment: env})
			}, formatAgents)
		},
	}
	list.Flags().StringVar(&env, "env", "", "only the agents of this environment")
	cmd.AddCommand(list)
	return cmd
}
