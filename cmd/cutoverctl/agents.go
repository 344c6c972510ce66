package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/durationpb"

	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

func newAgentsCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "agents",
		Aliases: []string{"agent"},
		Short:   "Show the front-ends' agents, enroll new ones, revoke them, forget the ones gone for good",
		Example: `  cutoverctl agents list --env production
  (umask 077; cutoverctl agent token create --environment production --uses 3 > join.token)
  cutoverctl agent revoke fe-2 --environment production
  cutoverctl agent remove fe-3 --environment production`,
	}
	var env string
	list := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List agents: connected or not, their identity and certificate, and per application what runs and what is staged",
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
	cmd.AddCommand(list, newAgentTokenCmd(c), newAgentRevokeCmd(c), newAgentRemoveCmd(c))
	return cmd
}

func newAgentTokenCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Issue join tokens, with which new agents enroll",
		Example: `  (umask 077; cutoverctl agent token create --environment production > join.token)
  cutover-agent --join-token-file join.token --controller ctl.internal:7070 --environment production ...`,
	}
	var env, name string
	var life time.Duration
	var uses int32
	create := &cobra.Command{
		Use:   "create --environment E [--ttl D] [--uses N] [--name NAME]",
		Short: "Issue an agent join token and print it, alone on a line (it is shown once)",
		Long: `Issue a join token for agents of environment E (which need not exist yet).
An agent started with cutover-agent --join-token-file FILE enrolls with it:
it gets a certificate naming cutover://E/agent/NAME. The token carries the
hash of the controller's CA key, so the agent needs nothing else to trust the
controller. In table output the token alone is printed, on one line; -o json
or -o yaml print it with its id, expiry and CA hash.`,
		Example: `  (umask 077; cutoverctl agent token create --environment production > join.token)
  cutoverctl agent token create --environment production --uses 10 --ttl 4h
  cutoverctl agent token create --environment production --name fe-3`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if life <= 0 {
				return fmt.Errorf("--ttl %s: want a positive duration, e.g. 1h", life)
			}
			if uses < 1 {
				return fmt.Errorf("--uses %d: want at least 1", uses)
			}
			return unary(c, cmd, func(ctx context.Context, api cutoverv1.AdminServiceClient) (*cutoverv1.CreateJoinTokenResponse, error) {
				return api.CreateJoinToken(ctx, &cutoverv1.CreateJoinTokenRequest{
					Environment: env, Ttl: durationpb.New(life), Uses: uses, Name: name,
				})
			}, func(w io.Writer, resp *cutoverv1.CreateJoinTokenResponse) { fmt.Fprintln(w, resp.GetToken()) })
		},
	}
	f := create.Flags()
	f.StringVar(&env, "environment", "", "the environment the enrolling agents will serve (required)")
	f.DurationVar(&life, "ttl", time.Hour, "how long the token may be used")
	f.Int32Var(&uses, "uses", 1, "how many agents may enroll with it")
	f.StringVar(&name, "name", "", "the only agent name that may enroll with it (default: any)")
	f.SetNormalizeFunc(envAlias)
	_ = create.MarkFlagRequired("environment")
	cmd.AddCommand(create)
	return cmd
}

func newAgentRevokeCmd(c *cli) *cobra.Command {
	var env string
	cmd := &cobra.Command{
		Use:   "revoke NAME --environment E",
		Short: "Revoke an agent's certificate: it is disconnected at once and refused from then on",
		Long: `Revoke the certificate of agent NAME of environment E: its connections are
closed at once and its certificate is refused from then on. The name may be
enrolled again, with a new join token.`,
		Example: `  cutoverctl agent revoke fe-2 --environment production`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return unary(c, cmd, func(ctx context.Context, api cutoverv1.AdminServiceClient) (*cutoverv1.Agent, error) {
				return api.RevokeAgent(ctx, &cutoverv1.RevokeAgentRequest{Environment: env, Name: args[0]})
			}, formatAgent)
		},
	}
	cmd.Flags().StringVar(&env, "environment", "", "the agent's environment (required)")
	cmd.Flags().SetNormalizeFunc(envAlias)
	_ = cmd.MarkFlagRequired("environment")
	return cmd
}

func newAgentRemoveCmd(c *cli) *cobra.Command {
	var env string
	cmd := &cobra.Command{
		Use:     "remove NAME [--environment E]",
		Aliases: []string{"rm"},
		Short:   "Forget an agent that is not connected (a front-end gone for good)",
		Long: `Forget agent NAME, which must not be connected: it leaves agent list and
the readiness checks of continue, and its enrollment is deleted, so that to
come back it must enroll again with a join token. A connected agent is
refused (FailedPrecondition): stop it first, or revoke it. An admin limited
to one environment must name it with --environment.`,
		Example: `  cutoverctl agent remove fe-3 --environment production`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return unary(c, cmd, func(ctx context.Context, api cutoverv1.AdminServiceClient) (*cutoverv1.Agent, error) {
				return api.RemoveAgent(ctx, &cutoverv1.RemoveAgentRequest{Environment: env, Name: args[0]})
			}, formatAgent)
		},
	}
	cmd.Flags().StringVar(&env, "environment", "", "the agent's environment")
	cmd.Flags().SetNormalizeFunc(envAlias)
	return cmd
}
