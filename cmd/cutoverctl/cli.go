package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"slices"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

const (
	// defaultController is used when neither --controller nor CUTOVER_CONTROLLER is set.
	defaultController = "127.0.0.1:7070"
	// defaultCallTimeout bounds one request when --timeout is not given.
	defaultCallTimeout = 30 * time.Second
	// actorHeader is the gRPC metadata key that tells the controller who asks.
	actorHeader = "x-cutover-actor"
)

// cli holds the global flags and the lazily opened connection shared by
// every subcommand.
type cli struct {
	controller string
	output     string
	timeout    time.Duration
	timeoutSet bool

	stdout, stderr io.Writer
	// isTerminal says whether a writer is a terminal, for progress bars.
	isTerminal func(io.Writer) bool

	conn   *grpc.ClientConn
	client cutoverv1.AdminServiceClient
	// cancel ends the whole-command deadline set by --timeout.
	cancel context.CancelFunc
}

// run executes cutoverctl with args and returns the process exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := &cli{stdout: stdout, stderr: stderr, isTerminal: isTerminal}
	root := newRootCmd(c)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if c.cancel != nil {
		c.cancel()
	}
	if c.conn != nil {
		_ = c.conn.Close()
	}
	if err != nil {
		fmt.Fprintln(stderr, "error: "+describeError(err))
		if status.Code(err) == codes.Unavailable {
			fmt.Fprintf(stderr, "hint: is a controller listening on %s? Set --controller or CUTOVER_CONTROLLER.\n", c.controller)
		}
		return 1
	}
	return 0
}

// describeError renders err as "Code: message" when it carries a gRPC status.
func describeError(err error) string {
	var st interface{ GRPCStatus() *status.Status }
	if errors.As(err, &st) {
		s := st.GRPCStatus()
		return fmt.Sprintf("%s: %s", s.Code(), s.Message())
	}
	return err.Error()
}

func newRootCmd(c *cli) *cobra.Command {
	controller := os.Getenv("CUTOVER_CONTROLLER")
	if controller == "" {
		controller = defaultController
	}
	root := &cobra.Command{
		Use:   "cutoverctl",
		Short: "Drive a cutover controller: environments, applications, deployments, agents",
		Long: `cutoverctl drives a cutover controller through its AdminService.

A deployment brings an environment to given versions of applications, in two
stages: "deploy prepare" builds and stages the releases on every front-end
without touching what runs; "deploy continue" swaps every front-end to them
inside the deployment window. "deploy start" runs both stages back to back.

Output is a table; -o json or -o yaml print the API's answer for scripts.
Shell completion: see "cutoverctl completion bash --help" (or zsh, fish).`,
		Example: `  export CUTOVER_CONTROLLER=127.0.0.1:7070
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
	f.StringVar(&c.controller, "controller", controller, "controller gRPC address (env CUTOVER_CONTROLLER)")
	f.StringVarP(&c.output, "output", "o", "table", "output format: table, json (the response's JSON, proto field names) or yaml (the same as YAML)")
	f.DurationVar(&c.timeout, "timeout", 0, "time limit for the whole command (default 30s per request; no limit while following a deployment)")
	root.AddCommand(newEnvCmd(c), newAppCmd(c), newDeployCmd(c), newAgentsCmd(c))
	root.AddCommand(newAuditCmd(c))
	return root
}

// api returns the AdminService client, dialing on first use.
func (c *cli) api() (cutoverv1.AdminServiceClient, error) {
	if c.client != nil {
		return c.client, nil
	}
	actor := currentActor()
	addActor := func(ctx context.Context) context.Context {
		return metadata.AppendToOutgoingContext(ctx, actorHeader, actor)
	}
	conn, err := grpc.NewClient(c.controller,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			return invoker(addActor(ctx), method, req, reply, cc, opts...)
		}),
		grpc.WithStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
			return streamer(addActor(ctx), desc, cc, method, opts...)
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("controller address %q: %w", c.controller, err)
	}
	c.conn = conn
	c.client = cutoverv1.NewAdminServiceClient(conn)
	return c.client, nil
}

// currentActor names the operator as user@host for the controller's history.
func currentActor() string {
	name := os.Getenv("USER")
	if name == "" {
		if u, err := user.Current(); err == nil {
			name = u.Username
		}
	}
	if name == "" {
		name = "unknown"
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	return name + "@" + host
}

// callCtx bounds one request: by --timeout if given (already on ctx, for
// the whole command), else by defaultCallTimeout.
func (c *cli) callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	if c.timeoutSet {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, defaultCallTimeout)
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
