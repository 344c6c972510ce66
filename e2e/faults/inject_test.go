package faults

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/cutover-dev/cutover/internal/localcluster"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// inject applies the plan's faults, one at a time, until the scenario is
// done; then it heals everything (SIGCONT, proxy restored) and starts what
// is down.
func (r *run) inject(ctx context.Context, scenarioDone <-chan struct{}) {
	defer r.heal(ctx)
	for i, f := range r.plan.Faults {
		ch := r.anchors[anchor{f.Step, f.Phase}]
		select {
		case <-ch:
		case <-scenarioDone:
			select {
			case <-ch:
			default:
				r.event("deployment %d never ran: faults %d..%d not injected", f.Step+1, i+1, len(r.plan.Faults))
				return
			}
		}
		time.Sleep(f.Delay)
		r.event("fault %d: %s", i+1, f)
		if err := r.apply(ctx, f); err != nil {
			r.violation("fault %d (%s): recovery failed: %v", i+1, f, err)
		}
		r.injected = append(r.injected, f)
		r.event("fault %d over", i+1)
		r.supervise(ctx)
	}
}

// apply injects f and waits until it is over.
func (r *run) apply(ctx context.Context, f Fault) error {
	c := r.c
	a := c.Agents[f.Agent]
	switch f.Kind {
	case KillController:
		c.Controller.Kill()
		time.Sleep(f.Down)
		return c.StartController(ctx)
	case KillAgent:
		a.Proc.Kill()
		time.Sleep(f.Down)
		return c.RestartAgent(ctx, a, env)
	case StopController, StopAgent:
		pid := c.Controller.Pid()
		if f.Kind == StopAgent {
			pid = a.Proc.Pid()
		}
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			return err
		}
		time.Sleep(f.Down)
		return syscall.Kill(pid, syscall.SIGCONT)
	case HangAgent:
		return r.hang(ctx, f, a)
	case CutNetwork:
		r.proxy.Cut()
		time.Sleep(f.Down)
		return r.proxy.Restore()
	case SlowNetwork:
		if err := r.proxy.Slow(f.LatencyMs, f.LatencyMs/4); err != nil {
			return err
		}
		time.Sleep(f.Down)
		r.proxy.Fast()
		return nil
	case HangHook:
		if err := os.WriteFile(r.hangFile(), nil, 0o644); err != nil {
			return err
		}
		time.Sleep(f.Down)
		return os.Remove(r.hangFile())
	case DatabaseDown:
		dir := filepath.Dir(r.db)
		if err := os.Rename(dir, dir+".down"); err != nil {
			return err
		}
		time.Sleep(f.Down)
		return os.Rename(dir+".down", dir)
	case DiskFull:
		filler := filepath.Join(r.dir, a.Name, "filler")
		n, err := fill(filler)
		r.event("disk of %s full (%d MiB written)", a.Name, n>>20)
		time.Sleep(f.Down)
		if rmErr := os.Remove(filler); rmErr != nil {
			return rmErr
		}
		return err
	}
	return fmt.Errorf("unknown fault kind %q", f.Kind)
}

// hangBound is how long stage 2 may stay ACTIVATING while an agent is
// stopped (HangAgent): keepalive (~10 s) plus a step's deadline.
const hangBound = 45 * time.Second

// stage2Deadline is each step's deadline in the environment of a run.
const stage2Deadline = 15 * time.Second

// hang stops agent a for f.Down while stage 2 of deployment f.Step runs,
// and checks that the deployment leaves ACTIVATING within hangBound
// although the agent stays stopped.
func (r *run) hang(ctx context.Context, f Fault, a *localcluster.Agent) error {
	r.mu.Lock()
	var d *dep
	if f.Step < len(r.deps) {
		d = r.deps[f.Step]
	}
	r.mu.Unlock()
	pid := a.Proc.Pid()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		return err
	}
	defer syscall.Kill(pid, syscall.SIGCONT) //nolint:errcheck // best effort; heal sends it again
	start := time.Now()
	reported := false
	for time.Since(start) < f.Down {
		time.Sleep(time.Second)
		if d == nil || reported {
			continue
		}
		gctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		got, err := r.c.Admin.GetDeployment(gctx, &cutoverv1.GetDeploymentRequest{Id: d.id})
		cancel()
		if err == nil && got.GetState() == cutoverv1.DeploymentState_DEPLOYMENT_STATE_ACTIVATING && time.Since(start) > hangBound {
			r.violation("deployment %s stayed ACTIVATING for %s while agent %s was stopped (SIGSTOP); stage 2 must end without it (issue 14: stage 2 deadlines); now:%s", d.id, hangBound, a.Name,
				r.explain(ctx, d.id))
			reported = true
		}
	}
	return syscall.Kill(pid, syscall.SIGCONT)
}

// fill writes zeros to path until its file system is full.
func fill(path string) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	var n int64
	for {
		w, err := f.Write(buf)
		n += int64(w)
		if errors.Is(err, syscall.ENOSPC) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// supervise starts again, as systemd would, a process that ended by
// itself, and records it; a panic in its log is a violation.
func (r *run) supervise(ctx context.Context) {
	c := r.c
	if ended, err := c.Controller.Exited(); ended {
		r.event("the controller ended by itself (%v); log:\n%s", err, c.Controller.Tail(15))
		if strings.Contains(c.Controller.Tail(200), "panic:") {
			r.violation("the controller panicked; see its log")
		}
		if err := c.StartController(ctx); err != nil {
			r.violation("the controller does not start again: %v", err)
		}
	}
	for _, a := range c.Agents {
		if ended, err := a.Proc.Exited(); ended {
			r.event("agent %s ended by itself (%v); log:\n%s", a.Name, err, a.Proc.Tail(15))
			if strings.Contains(a.Proc.Tail(200), "panic:") {
				r.violation("agent %s panicked; see its log", a.Name)
			}
			if err := c.RestartAgent(ctx, a, env); err != nil {
				r.violation("agent %s does not start again: %v", a.Name, err)
			}
		}
	}
}

// heal undoes whatever a fault left: SIGCONT to every process, the proxy
// restored and fast, a process that ended started again.
func (r *run) heal(ctx context.Context) {
	for _, p := range r.c.Procs() {
		_ = syscall.Kill(p.Pid(), syscall.SIGCONT)
	}
	_ = os.Remove(r.hangFile())
	if dir := filepath.Dir(r.db); !exists(dir) {
		_ = os.Rename(dir+".down", dir)
	}
	_ = r.proxy.Restore()
	r.proxy.Fast()
	r.supervise(ctx)
}

// canMountTmpfs tries to mount (and unmount) a small tmpfs.
func canMountTmpfs() error {
	dir, err := os.MkdirTemp("", "cutover-faults-tmpfs-")
	if err != nil {
		return err
	}
	defer os.Remove(dir)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", dir).CombinedOutput(); err != nil {
		return fmt.Errorf("mount -t tmpfs: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return exec.Command("umount", dir).Run()
}

// hangFile is the file whose presence makes the before_activate hook wait
// (HangHook).
func (r *run) hangFile() string { return filepath.Join(r.dir, "hook.hang") }
