package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// profiler takes CPU profiles and execution traces of the controller and
// of one agent over a step of the bench (Config.ProfileDir).
type profiler struct {
	wg   sync.WaitGroup
	mu   sync.Mutex
	errs []error
}

// start begins, for each named pprof address, a CPU profile and an
// execution trace of secs seconds (more than the step takes, so that they
// cover it whole), written to dir as NAME-STEP.cpu.pprof and
// NAME-STEP.trace. Call wait when the step is over.
func (p *profiler) start(ctx context.Context, dir, step string, secs int, addrs map[string]string) {
	for name, addr := range addrs {
		for kind, file := range map[string]string{"profile": ".cpu.pprof", "trace": ".trace"} {
			path := filepath.Join(dir, name+"-"+step+file)
			p.wg.Go(func() {
				within := time.Duration(secs)*time.Second + 30*time.Second
				if err := FetchProfile(ctx, addr, fmt.Sprintf("%s?seconds=%d", kind, secs), path, within); err != nil {
					p.mu.Lock()
					p.errs = append(p.errs, err)
					p.mu.Unlock()
				}
			})
		}
	}
}

// profile runs step (a prepare) under profiles of the controller and of
// the first agent of env, when Config.ProfileDir is set; secs as in start.
func (r *run) profile(ctx context.Context, name, agent string, secs int, step func() error) error {
	if r.cfg.ProfileDir == "" {
		return step()
	}
	addrs := map[string]string{"controller": r.c.ControllerPprofAddr}
	for _, a := range r.c.Agents {
		if a.Name == agent {
			addrs[agent] = a.PprofAddr
		}
	}
	var p profiler
	p.start(ctx, r.cfg.ProfileDir, name, secs, addrs)
	err := step()
	if perr := p.wait(); perr != nil && err == nil {
		err = fmt.Errorf("profiles of %s: %w", name, perr)
	}
	if err == nil {
		r.say("profiles of %s in %s", name, r.cfg.ProfileDir)
	}
	return err
}

// wait waits for the profiles to be written and returns their errors.
func (p *profiler) wait() error {
	p.wg.Wait()
	return errors.Join(p.errs...)
}

// FetchProfile writes the Go runtime profile /debug/pprof/NAME (with its
// query, e.g. "heap?gc=1" or "profile?seconds=30") of the process whose
// pprof server is at addr to path, within the time given.
func FetchProfile(ctx context.Context, addr, name, path string, within time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	url := "http://" + addr + "/debug/pprof/" + name
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
