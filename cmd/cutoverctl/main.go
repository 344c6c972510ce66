// Command cutoverctl is the operator's command line for cutover. It talks
// only to a controller's public AdminService: environments, applications,
// deployments (plan, prepare, continue, start, abort, watch) and agents.
//
// Tables are printed by default; -o json prints the protojson form of each
// response, for scripts, and -o yaml the same as YAML. Following a
// deployment (deploy watch, --wait) draws a progress bar per agent when the
// output is a terminal, and prints plain lines otherwise. The exit status is
// non-zero on any error, and the server's status code and message are
// printed on stderr. `cutoverctl completion bash|zsh|fish` prints a shell
// completion script.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
