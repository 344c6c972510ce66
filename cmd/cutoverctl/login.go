package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cutover-dev/cutover/pkg/token"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

func newLoginCmd(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "login [--controller ADDR] [--ca-file FILE] [--token-file FILE | < TOKEN]",
		Short: "Check a controller's address, CA and token, and keep them in the config file",
		Long: `Check that the controller (--controller or CUTOVER_CONTROLLER) is reached
over TLS with the CA given (--ca-file or CUTOVER_CA_FILE; else the system's
roots) and accepts the token (--token-file, else read from stdin when stdin is
not a terminal), then write all three to the config file, readable by you
only: $CUTOVER_CONFIG, else $XDG_CONFIG_HOME/cutover/config.yaml, else
~/.config/cutover/config.yaml. Later commands use them; flags and environment
variables still win over the file.`,
		Example: `  cutoverctl login --controller ctl.internal:7070 --ca-file ca.crt --token-file alice.token
  sudo cat /var/lib/cutover/bootstrap.token | cutoverctl login --ca-file /var/lib/cutover/tls/ca.crt`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.login(cmd.Context())
		},
	}
}

// login checks the credentials with ListEnvironments (which every role
// may call) and saves them.
func (c *cli) login(ctx context.Context) error {
	path := configPath(c.getenv)
	if path == "" {
		return errors.New("no place for the config file: set CUTOVER_CONFIG, XDG_CONFIG_HOME or HOME")
	}
	cfg, err := loadConfig(path)
	if err != nil {
		return err
	}
	// The token comes from --token-file or stdin only: not from the
	// environment, nor from the file being replaced.
	noTokenEnv := func(k string) string {
		if k == "CUTOVER_TOKEN" || k == "CUTOVER_TOKEN_FILE" {
			return ""
		}
		return c.getenv(k)
	}
	old := *cfg
	old.Token, old.TokenFile = "", ""
	e, warnings, err := resolveEndpoint(c.conn, noTokenEnv, &old, path)
	for _, w := range warnings {
		fmt.Fprintln(c.stderr, w)
	}
	if err != nil {
		return err
	}
	if e.token == "" {
		if c.stdinIsTerminal() {
			return errors.New("no token: give it with --token-file FILE, or on stdin (cutoverctl login < FILE)")
		}
		b, err := io.ReadAll(io.LimitReader(c.stdin, 4096))
		if err != nil {
			return fmt.Errorf("read the token from stdin: %w", err)
		}
		e.token, e.tokenFrom = strings.TrimSpace(string(b)), "stdin"
		if e.token == "" {
			return errors.New("no token on stdin: pipe one in (cutoverctl login < FILE) or give --token-file FILE")
		}
		if _, err := token.ParseOperator(e.token); err != nil {
			return fmt.Errorf("the token from stdin is not an operator token: %v", err)
		}
	}
	if e.caFile != "" {
		if e.caFile, err = filepath.Abs(e.caFile); err != nil {
			return fmt.Errorf("--ca-file: %w", err)
		}
	}
	api, err := c.dial(e)
	if err != nil {
		return err
	}
	callCtx, cancel := c.callCtx(ctx)
	defer cancel()
	if _, err := api.ListEnvironments(callCtx, &cutoverv1.ListEnvironmentsRequest{}); err != nil {
		return err
	}
	cfg.Controller, cfg.CAFile, cfg.Token, cfg.TokenFile = e.controller, e.caFile, e.token, ""
	if err := saveConfig(path, cfg); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "credentials accepted by %s (token %s); saved in %s\n", e.controller, token.ID(e.token), path)
	if c.getenv("CUTOVER_TOKEN") != "" || c.getenv("CUTOVER_TOKEN_FILE") != "" {
		fmt.Fprintln(c.stderr, "note: CUTOVER_TOKEN or CUTOVER_TOKEN_FILE is set, and wins over the config file's token")
	}
	return nil
}

func newLogoutCmd(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "logout",
		Short: "Remove the token from the config file (the controller and CA stay)",
		Long: `Remove the token (or token-file) from the config file that login wrote; the
controller's address and CA file stay. The token itself stays valid until it
expires or an admin revokes it (cutoverctl token revoke ID).`,
		Example: `  cutoverctl logout`,
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			path := configPath(c.getenv)
			cfg, err := loadConfig(path)
			if err != nil {
				return err
			}
			if cfg.Token == "" && cfg.TokenFile == "" {
				fmt.Fprintf(c.stdout, "no token in %s; nothing to do\n", orDash(path))
				return nil
			}
			id := token.ID(cfg.Token)
			cfg.Token, cfg.TokenFile = "", ""
			if err := saveConfig(path, cfg); err != nil {
				return err
			}
			if id != "" {
				fmt.Fprintf(c.stdout, "token %s removed from %s; it stays valid until it expires or is revoked (cutoverctl token revoke %s)\n", id, path, id)
			} else {
				fmt.Fprintf(c.stdout, "token removed from %s\n", path)
			}
			return nil
		},
	}
}
