package main

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

func newAppCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "app",
		Aliases: []string{"apps", "application", "applications"},
		Short:   "Register, show and stop applications",
		Example: `  cutoverctl app register ./examples/hello
  cutoverctl app get hello`,
	}
	cmd.AddCommand(newAppRegisterCmd(c), newAppGetCmd(c), newAppListCmd(c), newAppStopCmd(c))
	return cmd
}

func newAppRegisterCmd(c *cli) *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "register DIR",
		Short: "Register (or re-register) an application's source directory",
		Long: `Register an application: DIR is a source directory with a cutover.yaml at
its root. DIR is sent as an absolute path and read by the controller, so it
must be reachable from the controller's machine. The application's name is
the one in cutover.yaml; registering the same directory again is harmless.`,
		Example: `  cutoverctl app register ./examples/hello
  cutoverctl app register /srv/src/billing --name billing`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := filepath.Abs(args[0])
			if err != nil {
				return fmt.Errorf("source directory %q: %w", args[0], err)
			}
			return unary(c, cmd, func(ctx context.Context, api cutoverv1.AdminServiceClient) (*cutoverv1.Application, error) {
				return api.RegisterApplication(ctx, &cutoverv1.RegisterApplicationRequest{
					Application: &cutoverv1.Application{Name: name, SourceDir: dir},
				})
			}, formatApplication)
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "expected name; refused unless it matches cutover.yaml")
	return cmd
}

func newAppGetCmd(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:     "get NAME",
		Short:   "Show one application and its recent releases",
		Example: `  cutoverctl app get hello`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return unary(c, cmd, func(ctx context.Context, api cutoverv1.AdminServiceClient) (*cutoverv1.Application, error) {
				return api.GetApplication(ctx, &cutoverv1.GetApplicationRequest{Name: args[0]})
			}, formatApplication)
		},
	}
}

func newAppListCmd(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List every registered application",
		Example: `  cutoverctl app list`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return unary(c, cmd, func(ctx context.Context, api cutoverv1.AdminServiceClient) (*cutoverv1.ListApplicationsResponse, error) {
				return api.ListApplications(ctx, &cutoverv1.ListApplicationsRequest{})
			}, formatApplications)
		},
	}
}
