// Command cutoverctl is the operator's command line for cutover. It talks
// only to a controller's public AdminService: environments, applications,
// deployments (plan, prepare, continue, start, abort, watch) and agents.
//
// Tables are printed by default; -o json prints the protojson form of each
// response, for scripts. The exit status is non-zero on any error, and the
// server's status code and message are printed on stderr.
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
