// Command cutoverctl is the operator's command line for cutover. It talks
// only to a controller's public AdminService: environments, applications,
// deployments (plan, prepare, continue, start, abort, watch) and agents.
//
// It talks to the controller over TLS 1.3 only, verifying the controller's
// certificate against --ca-file (CUTOVER_CA_FILE; the controller's
// <data-dir>/tls/ca.crt) or the system's roots, and sends an operator token
// with every request as "authorization: Bearer <token>", taken from
// --token-file, CUTOVER_TOKEN, CUTOVER_TOKEN_FILE or the config file that
// `cutoverctl login` writes (conn.go, config.go). The token is never
// printed.
//
// Tables are printed by default; -o json prints the protojson form of each
// response, for scripts, and -o yaml the same as YAML. Following a
// deployment (deploy watch, --wait) draws a progress bar per agent when the
// output is a terminal, and prints plain lines otherwise. The exit status is
// non-zero on any error, and the server's status code and message are
// printed on stderr, with a hint when one helps (errors.go). `cutoverctl completion bash|zsh|fish` prints a shell
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
