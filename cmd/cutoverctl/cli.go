package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

const (
	// defaultController is used when neither --controller,
	// CUTOVER_CONTROLLER nor the config file names one.
	defaultController = "127.0.0.1:7070"
	// defaultCallTimeout bounds one request when --timeout is not given.
	defaultCallTimeout = 30 * time.Second
)

// cli holds the global flags and the lazily opened connection shared by
// every subcommand.
type cli struct {
	conn    connFlags
	output  string
	timeout time.Duration
	// timeoutSet says whether --timeout was given.
	timeoutSet bool

	stdin          io.Reader
	stdout, stderr io.Writer
	// getenv reads the process's environment (a map in tests).
	getenv func(string) string
	// isTerminal says whether a writer is a terminal, for progress bars.
	isTerminal func(io.Writer) bool
	// stdinIsTerminal says whether stdin is a terminal (login reads the
	// token from it when it is not).
	stdinIsTerminal func() bool

	// endpoint is where the connection goes, once api resolved it.
	endpoint endpoint
	grpcConn *grpc.ClientConn
	client   cutoverv1.AdminServiceClient
	// cancel ends the whole-command deadline set by --timeout.
	cancel context.CancelFunc
}

// run executes cutoverctl with args and returns the process exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runWith(ctx, args, &cli{
		stdin: os.Stdin, stdout: stdout, stderr: stderr,
		getenv: os.Getenv, isTerminal: isTerminal, stdinIsTerminal: stdinIsTerminal,
	})
}

// runWith executes cutoverctl with args and c's streams and environment.
func runWith(ctx context.Context, args []string, c *cli) int {
	if c.isTerminal == nil {
		c.isTerminal = func(io.Writer) bool { return false }
	}
	if c.stdinIsTerminal == nil {
		c.stdinIsTerminal = func() bool { return false }
	}
	if c.stdin == nil {
		c.stdin = strings.NewReader("")
	}
	root := newRootCmd(c)
	root.SetArgs(args)
	root.SetIn(c.stdin)
	root.SetOut(c.stdout)
	root.SetErr(c.stderr)
	err := root.ExecuteContext(ctx)
	if c.cancel != nil {
		c.cancel()
	}
	if c.grpcConn != nil {
		_ = c.grpcConn.Close()
	}
	if err != nil {
		fmt.Fprintln(c.stderr, "error: "+describeError(err))
		if h := hint(err, c.endpoint); h != "" {
			fmt.Fprintln(c.stderr, "hint: "+h)
		}
		return 1
	}
	return 0
}

func newRootCmd(c *cli) *cobra.Command {
	root := &cobra.Command{
		Use:   "cutoverctl",
		Short: "Drive a cutover controller: environments, applications, deployments, agents",
		Long: `cutoverctl drives a cutover controller through its AdminService.

A deployment brings an environment to given versions of applications, in two
stages: "deploy prepare" builds and stages the releases on every front-end
without touching what runs; "deploy continue" swaps every front-end to them
inside the deployment window. "deploy start" runs both stages back to back.

The controller is reached over TLS 1.3 only. Its certificate must chain to
--ca-file (the controller's <data-dir>/tls/ca.crt) or to the system's roots,
and name the host of --controller. Every request carries an operator token
(from "cutoverctl token create", or <data-dir>/bootstrap.token for the first
admin). Each setting is taken from, first to last:

  controller  --controller, CUTOVER_CONTROLLER, the config file, 127.0.0.1:7070
  CA          --ca-file, CUTOVER_CA_FILE, the config file, the system's roots
  token       --token-file, CUTOVER_TOKEN, CUTOVER_TOKEN_FILE, the config file

The config file, $CUTOVER_CONFIG or $XDG_CONFIG_HOME/cutover/config.yaml
(~/.config/cutover/config.yaml), is written by "cutoverctl login"; its token
and CA file are used only for its own controller.

Output is a table; -o json or -o yaml print the API's answer for scripts.
Shell completion: see "cutoverctl completion bash --help" (or zsh, fish).`,
		Example: `  cutoverctl login --controller ctl.internal:7070 --ca-file ca.crt --token-file admin.token
  cutoverctl env create production --two-stage
  cutoverctl app register ./examples/hello
  cutoverctl deploy create --env production --app hello=v2
  cutoverctl deploy prepare d-1 --wait
  cutoverctl deploy continue d-1 --wait
  source <(cutoverctl completion bash)`,
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if !slices.Contains(outputFormats, c.output) && cmd.Annotations[outputIsFile] == "" {
				return fmt.Errorf("-o %q: want table, json or yaml", c.output)
			}
			c.timeoutSet = cmd.Flags().Changed("timeout")
			if c.timeoutSet {
				ctx, cancel := context.WithTimeout(cmd.Context(), c.timeout)
				cmd.SetContext(ctx)
				c.cancel = cancel
			}
			return nil
		},
	}
	f := root.PersistentFlags()
	f.StringVar(&c.conn.controller, "controller", "", "controller gRPC address HOST:PORT (else env CUTOVER_CONTROLLER, the config file, "+defaultController+")")
	f.StringVar(&c.conn.caFile, "ca-file", "", "PEM file of the CA that signed the controller's certificate, its <data-dir>/tls/ca.crt (else env CUTOVER_CA_FILE, the config file, the system's roots)")
	f.StringVar(&c.conn.tokenFile, "token-file", "", "file holding the operator token (else env CUTOVER_TOKEN, env CUTOVER_TOKEN_FILE, the config file)")
	f.StringVarP(&c.output, "output", "o", "table", "output format: table, json (the response's JSON, proto field names) or yaml (the same as YAML)")
	f.DurationVar(&c.timeout, "timeout", 0, "time limit for the whole command (default 30s per request; no limit while following a deployment)")
	root.AddCommand(newEnvCmd(c), newAppCmd(c), newDeployCmd(c), newAgentsCmd(c), newTokenCmd(c), newLoginCmd(c), newLogoutCmd(c))
	root.AddCommand(newAuditCmd(c))
	return root
}

// api returns the AdminService client, dialing on first use.
func (c *cli) api() (cutoverv1.AdminServiceClient, error) {
	if c.client != nil {
		return c.client, nil
	}
	path := configPath(c.getenv)
	cfg, err := loadConfig(path)
	if err != nil {
		return nil, err
	}
	e, warnings, err := resolveEndpoint(c.conn, c.getenv, cfg, path)
	for _, w := range warnings {
		fmt.Fprintln(c.stderr, w)
	}
	if err != nil {
		return nil, err
	}
	return c.dial(e)
}

// dial connects to e; the connection is closed when the command ends.
func (c *cli) dial(e endpoint) (cutoverv1.AdminServiceClient, error) {
	c.endpoint = e
	opts, err := e.dialOptions()
	if err != nil {
		return nil, err
	}
	conn, err := grpc.NewClient(e.controller, opts...)
	if err != nil {
		return nil, fmt.Errorf("controller address %q: %w", e.controller, err)
	}
	c.grpcConn = conn
	c.client = cutoverv1.NewAdminServiceClient(conn)
	return c.client, nil
}

// callCtx bounds one request: by --timeout if given (already on ctx, for
// the whole command), else by defaultCallTimeout.
func (c *cli) callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return c.callCtxWithin(ctx, defaultCallTimeout)
}

// callCtxWithin is callCtx for a request that may take longer than
// defaultCallTimeout: bounded by --timeout if given, else by d.
func (c *cli) callCtxWithin(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if c.timeoutSet {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}

// followCtx bounds a wait on a deployment: only by --timeout, if given.
func (c *cli) followCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithCancel(ctx)
}

// print writes msg as protojson with -o json, as YAML with -o yaml,
// otherwise calls table.
func (c *cli) print(msg proto.Message, table func(w io.Writer)) error {
	switch c.output {
	case "json":
		return writeJSON(c.stdout, msg, true)
	case "yaml":
		return writeYAML(c.stdout, msg)
	}
	table(c.stdout)
	return nil
}

// writeJSON writes msg as protojson (proto field names), indented or on one line.
func writeJSON(w io.Writer, msg proto.Message, indent bool) error {
	opts := protojson.MarshalOptions{UseProtoNames: true}
	if indent {
		opts.Multiline, opts.Indent = true, "  "
	}
	b, err := opts.Marshal(msg)
	if err != nil {
		return fmt.Errorf("encode %T as JSON: %w", msg, err)
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// unary runs one AdminService request with the command's deadline and
// prints its response with -o json or as table.
func unary[T proto.Message](c *cli, cmd *cobra.Command, call func(context.Context, cutoverv1.AdminServiceClient) (T, error), table func(io.Writer, T)) error {
	api, err := c.api()
	if err != nil {
		return err
	}
	ctx, cancel := c.callCtx(cmd.Context())
	defer cancel()
	got, err := call(ctx, api)
	if err != nil {
		return err
	}
	return c.print(got, func(w io.Writer) { table(w, got) })
}
