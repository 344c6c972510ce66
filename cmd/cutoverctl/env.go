package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

func newEnvCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "env",
		Aliases: []string{"environment", "environments"},
		Short:   "Create, change and show environments",
		Example: `  cutoverctl env create production --two-stage
  cutoverctl env update production --window "Mon-Fri 02:00-04:00 Europe/Lisbon"
  cutoverctl env list`,
	}
	cmd.AddCommand(newEnvCreateCmd(c), newEnvUpdateCmd(c), newEnvGetCmd(c), newEnvListCmd(c), newEnvRollbackCmd(c), newEnvReconcileCmd(c))
	return cmd
}

// addEnvFlags declares the environment settings on cmd.
func addEnvFlags(cmd *cobra.Command, f *envFlags) {
	fs := cmd.Flags()
	fs.BoolVar(&f.twoStage, "two-stage", false, "deploy in two stages (prepare, then continue); off: start only")
	fs.DurationVar(&f.preparedTTL, "prepared-ttl", 0, "how long a PREPARED deployment stays valid (controller default 96h)")
	fs.BoolVar(&f.requireApproval, "require-approval", false, "continue and start wait for an approval")
	fs.BoolVar(&f.requirePrepared, "require-prepared", false, "continue refuses to stage releases on front-ends that lack them (nothing transferred inside the window)")
	fs.StringArrayVar(&f.windows, "window", nil, `deployment window, e.g. "Mon-Fri 02:00-04:00 Europe/Lisbon" (repeatable; "" for none)`)
	fs.Int32Var(&f.keepReleases, "keep-releases", 0, "releases per application that agents keep (controller default 3)")
	fs.BoolVar(&f.peers, "peers", true, "agents started with --peer-listen share what they stage with each other (false: every agent fetches from the controller only)")
	fs.Int64Var(&f.stageRate, "stage-rate", 0, "cap on how fast each agent writes what it stages, in bytes per second, e.g. 52428800 for 50 MiB/s (0: none but the agents' own --stage-rate)")
	fs.DurationVar(&f.armDeadline, "arm-deadline", 0, "stage 2: time limit of the arm step; then it ends PREPARED again, naming the agents that did not answer (0: default 10m)")
	fs.DurationVar(&f.hooksDeadline, "hooks-deadline", 0, "stage 2: time limit of each before_activate and after_activate step (0: default 10m)")
	fs.DurationVar(&f.commitDeadline, "commit-deadline", 0, "stage 2: time limit of the commit step, and of the swap-back after a failed one; then the agents that swapped roll back and the deployment ends ROLLED_BACK or FAILED, naming the agents that did not answer (0: default 2m)")
	fs.StringVar(&f.dbDriver, "db-driver", "", `the environment's database: "sqlite" or "postgres" ("" with --db-dsn "" for none)`)
	fs.StringVar(&f.dbDSN, "db-dsn", "", "its connection string: a file path (sqlite) or postgres://USER:PASSWORD@HOST/DB (shown back without the password)")
	fs.DurationVar(&f.dbStatement, "db-statement-timeout", 0, "time limit of each migration statement (0: the server's default)")
	fs.DurationVar(&f.dbLock, "db-lock-timeout", 0, "time limit of each wait for a lock held by others (0: the server's default; sqlite 10s)")
	fs.StringVar(&f.dbShadowDSN, "db-shadow-dsn", "", "postgres: a role that may CREATE DATABASE, on the server where prepare creates its scratch database to check the SQL script (default: the --db-dsn role and server)")
	fs.BoolVar(&f.noCheck, "no-check", false, "save the database without checking that the controller can connect to it with the rights it needs")
}

func newEnvCreateCmd(c *cli) *cobra.Command {
	var f envFlags
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create an environment",
		Long: `Create an environment. NAME is a DNS label (lowercase letters, digits, '-').
Agents join it with cutover-agent --environment NAME. Settings not given take
the controller's defaults (single stage, prepared TTL 96h, no windows).
With a database, the controller first checks that it can connect and has the
rights it needs (PostgreSQL: CONNECT, CREATE on the schema, CREATEDB for the
shadow database prepare checks the SQL on, unless --db-shadow-dsn; SQLite: a
writable directory) and says what is missing; --no-check skips that.`,
		Example: `  cutoverctl env create production --two-stage --window "Mon-Fri 02:00-04:00 Europe/Lisbon" \
      --db-driver postgres --db-dsn 'postgres://app:secret@db.internal/app' --db-lock-timeout 5s
  cutoverctl env create staging --db-driver sqlite --db-dsn /var/lib/app/staging.db`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			env, _ := f.environment(args[0], cmd.Flags().Changed)
			return unary(c, cmd, func(ctx context.Context, api cutoverv1.AdminServiceClient) (*cutoverv1.Environment, error) {
				return api.CreateEnvironment(ctx, &cutoverv1.CreateEnvironmentRequest{Environment: env, SkipDatabaseCheck: f.noCheck})
			}, formatEnvironment)
		},
	}
	addEnvFlags(cmd, &f)
	return cmd
}

func newEnvUpdateCmd(c *cli) *cobra.Command {
	var f envFlags
	cmd := &cobra.Command{
		Use:   "update NAME",
		Short: "Change an environment's settings",
		Long: `Change an environment's settings. Only the flags given are changed (they
form the request's update_mask); the others keep their values.`,
		Example: `  cutoverctl env update production --two-stage=true
  cutoverctl env update production --window "Mon-Fri 02:00-04:00 Europe/Lisbon" --window "Sat 03:00-05:00 UTC"
  cutoverctl env update production --window ""   # no windows: stage 2 may run any time
  cutoverctl env update production --db-dsn 'postgres://app:new-secret@db.internal/app'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			env, paths := f.environment(args[0], cmd.Flags().Changed)
			if len(paths) == 0 {
				return fmt.Errorf("nothing to update: give at least one of %s", envFlagNames())
			}
			return unary(c, cmd, func(ctx context.Context, api cutoverv1.AdminServiceClient) (*cutoverv1.Environment, error) {
				return api.UpdateEnvironment(ctx, &cutoverv1.UpdateEnvironmentRequest{
					Environment:       env,
					UpdateMask:        &fieldmaskpb.FieldMask{Paths: paths},
					SkipDatabaseCheck: f.noCheck,
				})
			}, formatEnvironment)
		},
	}
	addEnvFlags(cmd, &f)
	return cmd
}

func newEnvGetCmd(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:     "get NAME",
		Short:   "Show one environment: settings, windows (open now? next opening), deployed versions",
		Example: `  cutoverctl env get production`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return unary(c, cmd, func(ctx context.Context, api cutoverv1.AdminServiceClient) (*cutoverv1.Environment, error) {
				return api.GetEnvironment(ctx, &cutoverv1.GetEnvironmentRequest{Name: args[0]})
			}, formatEnvironment)
		},
	}
}

func newEnvListCmd(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List every environment",
		Example: `  cutoverctl env list
  cutoverctl env list -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return unary(c, cmd, func(ctx context.Context, api cutoverv1.AdminServiceClient) (*cutoverv1.ListEnvironmentsResponse, error) {
				return api.ListEnvironments(ctx, &cutoverv1.ListEnvironmentsRequest{})
			}, formatEnvironments)
		},
	}
}
