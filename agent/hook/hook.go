// Package hook runs an app spec's hooks on the agent: `sh -c COMMAND` in a
// given directory, with the agent's environment and --env variables, in its
// own process group (killed whole at the time limit), its combined output
// kept up to a tail of OutputLimit bytes.
package hook

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/cutover-dev/cutover/pkg/appspec"
	"github.com/cutover-dev/cutover/pkg/logging"
	"github.com/cutover-dev/cutover/pkg/sdnotify"
)

// DefaultOutputLimit is how much of a hook's output is kept (the tail).
const DefaultOutputLimit = 16 << 10

// Config configures a Runner.
type Config struct {
	// Env holds the agent's --env values.
	Env map[string]string
	// Log receives a line per hook.
	Log *slog.Logger
	// Clock returns the time; nil: time.Now.
	Clock func() time.Time
	// OutputLimit is how many bytes of output are kept; 0: DefaultOutputLimit.
	OutputLimit int
}

// Runner runs hooks.
type Runner struct {
	cfg Config
}

// New returns a Runner.
func New(cfg Config) *Runner {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.OutputLimit <= 0 {
		cfg.OutputLimit = DefaultOutputLimit
	}
	return &Runner{cfg: cfg}
}

// Result is how one hook ran.
type Result struct {
	Ref     appspec.HookRef
	Command string
	// ExitCode is the exit status; -1 when the command did not exit by
	// itself (killed at its time limit) or could not start.
	ExitCode int
	Duration time.Duration
	// Output is the tail of the combined stdout and stderr.
	Output string
	// Error is empty on success, else why it failed.
	Error string
}

// Failed says whether the hook failed.
func (r Result) Failed() bool { return r.Error != "" }

// Run runs h (named ref) in dir, for release id, bounded by h's timeout and
// ctx. It never returns an error: a failure is in the Result.
func (r *Runner) Run(ctx context.Context, dir, release string, ref appspec.HookRef, h appspec.Hook) Result {
	limit := h.TimeoutOrDefault()
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	out := &tail{max: r.cfg.OutputLimit}
	cmd := exec.CommandContext(ctx, "sh", "-c", h.Command)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = sdnotify.FilterEnv(os.Environ())
	for k, v := range r.cfg.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Env = append(cmd.Env, "CUTOVER_APP="+ref.Application, "CUTOVER_RELEASE_ID="+release, "CUTOVER_HOOK="+string(ref.Kind))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second // a grandchild holding the output pipe open
	start := r.cfg.Clock()
	err := cmd.Run()
	res := Result{Ref: ref, Command: h.Command, ExitCode: -1, Duration: r.cfg.Clock().Sub(start), Output: out.String()}
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil && errors.Is(context.Cause(ctx), context.DeadlineExceeded) && err != nil:
		res.Error = fmt.Sprintf("%s hook %q of %s did not end within its timeout of %s and was killed", ref.Kind, h.Command, ref.Application, limit)
	case ctx.Err() != nil && err != nil:
		res.Error = fmt.Sprintf("%s hook %q of %s was stopped: %v", ref.Kind, h.Command, ref.Application, ctx.Err())
	case errors.As(err, &exit):
		res.ExitCode = exit.ExitCode()
		res.Error = fmt.Sprintf("%s hook %q of %s exited with status %d", ref.Kind, h.Command, ref.Application, res.ExitCode)
	case err != nil:
		res.Error = fmt.Sprintf("%s hook %q of %s could not run: %v", ref.Kind, h.Command, ref.Application, err)
	default:
		res.ExitCode = 0
	}
	log := r.cfg.Log.With(logging.KeyApplication, ref.Application, logging.KeyRelease, release, "hook", ref.Kind, "index", ref.Index)
	if res.Failed() {
		log.Warn("hook failed", "error", res.Error, "duration", res.Duration)
	} else {
		log.Info("hook done", "duration", res.Duration)
	}
	return res
}

// tail keeps the last max bytes written to it.
type tail struct {
	mu  sync.Mutex
	max int
	buf []byte
	cut bool
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
		t.cut = true
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cut {
		return "…" + string(t.buf)
	}
	return string(t.buf)
}
