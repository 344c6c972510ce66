package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// ctl runs the real cutoverctl with args, printing its command line and its
// output indented, and returns its standard output.
func (d *demo) ctl(ctx context.Context, args ...string) (string, error) {
	return d.runCtl(ctx, true, args...)
}

// runCtl runs cutoverctl with the current token; echo says whether to
// print its standard output (its standard error is always printed).
func (d *demo) runCtl(ctx context.Context, echo bool, args ...string) (string, error) {
	return d.runCtlAs(ctx, d.token, echo, args...)
}

// runCtlAs is runCtl with the token in tokenFile (noToken: none).
func (d *demo) runCtlAs(ctx context.Context, tokenFile string, echo bool, args ...string) (string, error) {
	show := showStderr
	if echo {
		show = showBoth
	}
	return d.exec(ctx, ctlRun{token: tokenFile, show: show}, args...)
}

// runCtlShown runs cutoverctl args with the token in tokenFile, printing
// line as its command line and only its standard error.
func (d *demo) runCtlShown(ctx context.Context, tokenFile, line string, args ...string) (string, error) {
	return d.exec(ctx, ctlRun{token: tokenFile, line: line, show: showStderr}, args...)
}

// runCtlCaptured runs cutoverctl args with the token in tokenFile,
// printing its command line, and returns its standard output and error
// together, without printing them.
func (d *demo) runCtlCaptured(ctx context.Context, tokenFile string, args ...string) (string, error) {
	return d.exec(ctx, ctlRun{token: tokenFile, show: showNone}, args...)
}

// What exec prints of cutoverctl's output.
const (
	showStderr = iota // standard error only; exec returns standard output
	showBoth          // both, in the order written; exec returns standard output
	showNone          // nothing; exec returns both, in the order written
)

// ctlRun says how exec runs cutoverctl.
type ctlRun struct {
	// token is the token file (noToken: none). When it is not the
	// current one (d.token), the command line shows it.
	token string
	// line is the command line shown after "cutoverctl "; default: the
	// quoted arguments.
	line string
	show int
}

// exec runs the real cutoverctl with args as r says, printing its command
// line first. cutoverctl sees only the demo's controller, CA and token:
// the CUTOVER_* variables and the config file of the user are left out.
func (d *demo) exec(ctx context.Context, r ctlRun, args ...string) (string, error) {
	line := r.line
	if line == "" {
		line = quoteArgs(args)
	}
	prefix := ""
	if r.token != d.token {
		prefix = "CUTOVER_TOKEN_FILE=" + r.token + " "
		if r.token == noToken {
			prefix = "env -u CUTOVER_TOKEN_FILE "
		}
	}
	fmt.Fprintf(d.out, "   $ %scutoverctl %s\n", prefix, line)
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(d.binDir, "cutoverctl"), args...)
	cmd.Env = d.ctlEnv(r.token)
	var stdout bytes.Buffer
	shown := &indenter{w: d.out, prefix: "     "}
	// One writer for both keeps progress (stderr) and results (stdout) in
	// the order cutoverctl wrote them.
	both := &indenter{w: io.MultiWriter(&stdout, shown)}
	switch r.show {
	case showBoth:
		cmd.Stdout, cmd.Stderr = both, both
	case showNone:
		cmd.Stdout, cmd.Stderr = &stdout, &stdout
	default:
		cmd.Stdout, cmd.Stderr = &stdout, shown
	}
	err := cmd.Run()
	both.flush()
	shown.flush()
	if err != nil {
		return stdout.String(), fmt.Errorf("cutoverctl %s: %w", quoteArgs(args), err)
	}
	return stdout.String(), nil
}

// ctlEnv is cutoverctl's environment: the demo's own, without the
// user's CUTOVER_* variables, with the demo controller's address and CA,
// the token in tokenFile (none for "" or noToken), and a config file
// that does not exist (so that the user's is not read).
func (d *demo) ctlEnv(tokenFile string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CUTOVER_") {
			env = append(env, kv)
		}
	}
	env = append(env, "CUTOVER_CONFIG="+filepath.Join(d.dir, "no-cutoverctl-config.yaml"))
	if d.cluster != nil {
		addr := d.cluster.Addr
		if d.ctlAddr != "" {
			addr = d.ctlAddr
		}
		env = append(env, "CUTOVER_CONTROLLER="+addr, "CUTOVER_CA_FILE="+d.cluster.CAFile)
	}
	if tokenFile != "" && tokenFile != noToken {
		env = append(env, "CUTOVER_TOKEN_FILE="+tokenFile)
	}
	return env
}

// quoteArgs renders args as a shell would need them.
func quoteArgs(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\"'$\\") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		out[i] = a
	}
	return strings.Join(out, " ")
}

// indenter writes whole lines to w, each after prefix. It is safe for the
// concurrent writes of a command's stdout and stderr.
type indenter struct {
	mu     sync.Mutex
	w      io.Writer
	prefix string
	buf    []byte
}

// Write buffers p and writes every complete line.
func (in *indenter) Write(p []byte) (int, error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.buf = append(in.buf, p...)
	for {
		i := bytes.IndexByte(in.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		if _, err := fmt.Fprintf(in.w, "%s%s\n", in.prefix, in.buf[:i]); err != nil {
			return 0, err
		}
		in.buf = in.buf[i+1:]
	}
}

// flush writes what is left of a last line without newline.
func (in *indenter) flush() {
	in.mu.Lock()
	defer in.mu.Unlock()
	if len(in.buf) > 0 {
		fmt.Fprintf(in.w, "%s%s\n", in.prefix, in.buf)
		in.buf = nil
	}
}
