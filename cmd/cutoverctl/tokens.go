package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"google.golang.org/protobuf/types/known/durationpb"

	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

func newTokenCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "token",
		Aliases: []string{"tokens"},
		Short:   "Create, list and revoke operator tokens (admin)",
		Long: `Operator tokens prove who calls the controller. Each names a subject (who
holds it, recorded as the actor of every call) and grants one role, on every
environment or on one:

  viewer    read: list, get, watch, plans, audit
  deployer  create, prepare, continue, abort, extend and roll back deployments
  approver  approve deployments, never one the same subject created or prepared
  admin     environments, applications, agents and tokens; everything

The controller keeps only a hash of each token: a token is shown once, when
it is created.`,
		Example: `  cutoverctl token create --subject alice --role deployer --environment production --ttl 720h > alice.token
  cutoverctl token list
  cutoverctl token revoke 0123456789abcdef`,
	}
	cmd.AddCommand(newTokenCreateCmd(c), newTokenListCmd(c), newTokenRevokeCmd(c))
	return cmd
}

// roles are the values of --role, in order of power.
var roles = []cutoverv1.Role{
	cutoverv1.Role_ROLE_VIEWER, cutoverv1.Role_ROLE_DEPLOYER, cutoverv1.Role_ROLE_APPROVER, cutoverv1.Role_ROLE_ADMIN,
}

// roleName is a role without its enum prefix, in lower case ("deployer").
func roleName(r cutoverv1.Role) string {
	return strings.ToLower(strings.TrimPrefix(r.String(), "ROLE_"))
}

// parseRole turns a --role value into a Role.
func parseRole(s string) (cutoverv1.Role, error) {
	names := make([]string, len(roles))
	for i, r := range roles {
		if strings.EqualFold(s, roleName(r)) || strings.EqualFold(s, r.String()) {
			return r, nil
		}
		names[i] = roleName(r)
	}
	return 0, fmt.Errorf("--role %q: want one of %s", s, strings.Join(names, ", "))
}

// envAlias lets --env stand for --environment, the name the trust
// commands are documented with, since the older commands take --env.
func envAlias(_ *pflag.FlagSet, name string) pflag.NormalizedName {
	if name == "env" {
		name = "environment"
	}
	return pflag.NormalizedName(name)
}

// ttl returns d as a Duration, or nil for 0 (the server's default).
func ttl(d time.Duration) *durationpb.Duration {
	if d == 0 {
		return nil
	}
	return durationpb.New(d)
}

func newTokenCreateCmd(c *cli) *cobra.Command {
	var subject, role, env string
	var life time.Duration
	cmd := &cobra.Command{
		Use:   "create --subject S --role viewer|deployer|approver|admin [--environment E] [--ttl D]",
		Short: "Issue an operator token and print it, alone on a line (it is shown once)",
		Long: `Issue an operator token. In table output the token alone is printed, on
one line, so that it can go straight to a file; -o json or -o yaml print it
with its id and expiry. Keep it in a file only its holder can read (umask
077), who passes it with --token-file, CUTOVER_TOKEN or "cutoverctl login".`,
		Example: `  (umask 077; cutoverctl token create --subject alice --role deployer --environment production > alice.token)
  cutoverctl token create --subject ci --role viewer --ttl 24h -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := parseRole(role)
			if err != nil {
				return err
			}
			if life < 0 {
				return fmt.Errorf("--ttl %s: want a positive duration, or 0 for a token that does not expire", life)
			}
			return unary(c, cmd, func(ctx context.Context, api cutoverv1.AdminServiceClient) (*cutoverv1.CreateTokenResponse, error) {
				return api.CreateToken(ctx, &cutoverv1.CreateTokenRequest{Subject: subject, Role: r, Environment: env, Ttl: ttl(life)})
			}, func(w io.Writer, resp *cutoverv1.CreateTokenResponse) { fmt.Fprintln(w, resp.GetToken()) })
		},
	}
	f := cmd.Flags()
	f.StringVar(&subject, "subject", "", "who holds the token, e.g. alice or ci-release (required)")
	f.StringVar(&role, "role", "", "what it allows: viewer, deployer, approver or admin (required)")
	f.StringVar(&env, "environment", "", "limit the role to this environment (default: every environment)")
	f.DurationVar(&life, "ttl", 0, "lifetime, e.g. 720h (default: it does not expire)")
	f.SetNormalizeFunc(envAlias)
	_ = cmd.MarkFlagRequired("subject")
	_ = cmd.MarkFlagRequired("role")
	_ = cmd.RegisterFlagCompletionFunc("role", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		names := make([]string, len(roles))
		for i, r := range roles {
			names[i] = roleName(r)
		}
		return names, cobra.ShellCompDirectiveNoFileComp
	})
	return cmd
}

func newTokenListCmd(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List operator tokens, without their secrets",
		Example: `  cutoverctl token list
  cutoverctl token list -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return unary(c, cmd, func(ctx context.Context, api cutoverv1.AdminServiceClient) (*cutoverv1.ListTokensResponse, error) {
				return api.ListTokens(ctx, &cutoverv1.ListTokensRequest{})
			}, formatTokens)
		},
	}
}

func newTokenRevokeCmd(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke an operator token at once",
		Long: `Revoke an operator token: the controller refuses it from then on. ID is the
token's public id, as token list shows it (the 16 hex digits after
"cutover.").`,
		Example: `  cutoverctl token revoke 0123456789abcdef`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return unary(c, cmd, func(ctx context.Context, api cutoverv1.AdminServiceClient) (*cutoverv1.TokenInfo, error) {
				return api.RevokeToken(ctx, &cutoverv1.RevokeTokenRequest{Id: args[0]})
			}, formatToken)
		},
	}
}

// allEnvironments is shown for a token or role not limited to one environment.
const allEnvironments = "*"

func formatTokens(w io.Writer, resp *cutoverv1.ListTokensResponse) {
	t := newTable(w)
	row(t, "ID", "SUBJECT", "ROLE", "ENVIRONMENT", "CREATED", "EXPIRES", "REVOKED", "CREATED-BY")
	for _, tok := range resp.GetTokens() {
		env := tok.GetEnvironment()
		if env == "" {
			env = allEnvironments
		}
		row(t, tok.GetId(), tok.GetSubject(), roleName(tok.GetRole()), env, formatTime(tok.GetCreateTime()),
			orDash(formatTime(tok.GetExpireTime())), orDash(formatTime(tok.GetRevokeTime())), orDash(tok.GetCreatedBy()))
	}
	_ = t.Flush()
}

func formatToken(w io.Writer, tok *cutoverv1.TokenInfo) {
	t := newTable(w)
	row(t, "ID", tok.GetId())
	row(t, "SUBJECT", tok.GetSubject())
	row(t, "ROLE", roleName(tok.GetRole()))
	env := tok.GetEnvironment()
	if env == "" {
		env = allEnvironments
	}
	row(t, "ENVIRONMENT", env)
	field(t, "CREATED", formatTime(tok.GetCreateTime()))
	field(t, "CREATED-BY", tok.GetCreatedBy())
	row(t, "EXPIRES", orDash(formatTime(tok.GetExpireTime())))
	row(t, "REVOKED", orDash(formatTime(tok.GetRevokeTime())))
	_ = t.Flush()
}
