package bench

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// Issue 12's figures: prepare against rsync --fsync, for a first release
// and for a v2 with 1% of the files changed, and the p99 latency of an app
// served during a prepare against without one.

// rsyncTo copies src, with `rsync -a --fsync`, to each of targets at once
// (as the agents stage at once), and returns the wall time and the CPU
// time the rsync processes used (user and system).
func rsyncTo(ctx context.Context, src string, targets []string) (wall, cpu time.Duration, err error) {
	for _, t := range targets {
		if err := os.MkdirAll(t, 0o755); err != nil { // rsync creates the last level only
			return 0, 0, err
		}
	}
	start := time.Now()
	type done struct {
		cpu time.Duration
		err error
	}
	dones := make(chan done, len(targets))
	for _, t := range targets {
		go func() {
			cmd := exec.CommandContext(ctx, "rsync", "-a", "--fsync", src+"/", t+"/")
			out, err := cmd.CombinedOutput()
			if err != nil {
				err = fmt.Errorf("rsync to %s: %w: %s", t, err, out)
			}
			var used time.Duration
			if cmd.ProcessState != nil {
				used = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
			}
			dones <- done{used, err}
		}()
	}
	for range targets {
		d := <-dones
		cpu += d.cpu
		if d.err != nil && err == nil {
			err = d.err
		}
	}
	return time.Since(start), cpu, err
}

// agentsCPU returns the CPU time the agents of env have used so far
// (process_cpu_seconds_total, user and system).
func (r *run) agentsCPU(env string) (time.Duration, error) {
	var sum float64
	for _, a := range r.c.Agents {
		if a.Environment != env {
			continue
		}
		v, err := Metric(a.MetricsAddr, "process_cpu_seconds_total", nil)
		if err != nil {
			return 0, err
		}
		sum += v
	}
	return time.Duration(sum * float64(time.Second)), nil
}

// changeFiles changes 4 KiB in place in fraction of the data files of dir
// (at least one), spread over the list: the other files stay as they are.
func changeFiles(dir string, fraction float64, seed uint64) (int, error) {
	files, err := dataFiles(dir)
	if err != nil {
		return 0, err
	}
	n := max(1, int(float64(len(files))*fraction+0.5))
	rng := rand.New(rand.NewChaCha8(seedBytes(seed + 2)))
	for i := range n {
		name := files[(i*len(files))/n]
		info, err := os.Stat(name)
		if err != nil {
			return 0, err
		}
		b, err := os.ReadFile(name)
		if err != nil {
			return 0, err
		}
		spot := min(4096, len(b))
		_, _ = randReader{rng}.Read(b[rng.IntN(len(b)-spot+1):][:spot])
		if err := os.WriteFile(name, b, 0o644); err != nil {
			return 0, err
		}
		// A later second than before: rsync's quick check compares sizes
		// and whole-second times, and the size is the same.
		later := info.ModTime().Add(2 * time.Second)
		if now := time.Now(); now.After(later) {
			later = now
		}
		later = later.Truncate(time.Second)
		if err := os.Chtimes(name, later, later); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// rsyncFigures measures (a) and (b): the many-agents prepare of a first
// release (already run) against rsync of the same tree to as many
// targets, then a prepare of v2 with 1% of the files changed against rsync
// of that v2 onto the targets, which hold the previous version.
func (r *run) rsyncFigures(ctx context.Context) error {
	if _, err := exec.LookPath("rsync"); err != nil {
		r.say("rsync is not installed: the rsync figures are left out (apt-get install rsync)")
		return nil
	}
	targets := make([]string, r.cfg.Agents)
	for i := range targets {
		targets[i] = filepath.Join(r.cfg.Dir, "rsync", fmt.Sprintf("target-%d", i+1))
	}
	defer os.RemoveAll(filepath.Join(r.cfg.Dir, "rsync"))
	r.say("baseline: rsync -a --fsync of the release to %d targets at once", len(targets))
	var err error
	if r.res.RsyncFirst, _, err = rsyncTo(ctx, r.src, targets); err != nil {
		return err
	}
	for i := range max(1, r.cfg.V2Reps) {
		n, err := changeFiles(r.src, 0.01, r.cfg.Seed+uint64(i))
		if err != nil {
			return fmt.Errorf("change the data: %w", err)
		}
		label := fmt.Sprintf("v%d-many", i+3)
		r.say("%s: %d file(s) changed (1%% of the files); prepare to %d agents holding the version before", label, n, r.cfg.Agents)
		cpu0, err := r.agentsCPU("many")
		if err != nil {
			return err
		}
		var d *cutoverv1.Deployment
		step := func() (err error) {
			d, err = r.deploy(ctx, "many", label, true)
			return err
		}
		if i == 0 {
			err = r.profile(ctx, "v2", "many-1", max(5, int(r.cfg.Size>>26)), step)
		} else {
			err = step()
		}
		if err != nil {
			return err
		}
		cpu1, err := r.agentsCPU("many")
		if err != nil {
			return err
		}
		p := V2Pair{Prepare: d.GetTransferDuration().AsDuration(), AgentsCPU: cpu1 - cpu0}
		r.say("baseline: rsync -a --fsync of %s onto the targets holding the version before", label)
		if p.Rsync, p.RsyncCPU, err = rsyncTo(ctx, r.src, targets); err != nil {
			return err
		}
		r.say("  %s ÷ %s = %.2f; CPU: agents %s, rsync %s (load average %s)", p.Prepare.Round(10*time.Millisecond), p.Rsync.Round(10*time.Millisecond), p.Ratio(),
			p.AgentsCPU.Round(10*time.Millisecond), p.RsyncCPU.Round(10*time.Millisecond), loadAverage())
		r.res.V2Pairs = append(r.res.V2Pairs, p)
		if i+1 < r.cfg.V2Reps { // one deployment of an environment at a time
			if _, err := r.c.Admin.ContinueDeployment(ctx, &cutoverv1.ContinueDeploymentRequest{Id: d.GetId()}); err != nil {
				return fmt.Errorf("continue %s: %w", d.GetId(), err)
			}
			if _, err := r.wait(ctx, d.GetId(), cutoverv1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED); err != nil {
				return err
			}
		}
	}
	return nil
}

// V2Pair is one prepare of a v2 to many agents and rsync of it.
type V2Pair struct {
	Prepare, Rsync time.Duration
	// AgentsCPU is the CPU time the agents used from the prepare's start
	// to its end (idle during the controller's build); RsyncCPU that of the
	// rsync processes. Unlike the wall times, they hardly depend on the
	// machine's other load.
	AgentsCPU, RsyncCPU time.Duration
}

// Ratio is Prepare ÷ Rsync.
func (p V2Pair) Ratio() float64 {
	if p.Rsync <= 0 {
		return 0
	}
	return p.Prepare.Seconds() / p.Rsync.Seconds()
}

// medianV2 is the median ratio of pairs (0 if none).
func medianV2(pairs []V2Pair) float64 { return medianBy(pairs, V2Pair.Ratio) }

// v2Measured lists the pairs.
func v2Measured(pairs []V2Pair) string {
	var out []string
	for _, p := range pairs {
		out = append(out, fmt.Sprintf("%s ÷ %s", p.Prepare.Round(10*time.Millisecond), p.Rsync.Round(10*time.Millisecond)))
	}
	return strings.Join(out, "; ")
}

// Load is a steady HTTP load on a small server: clients keep-alive
// clients, each sending at a fixed interval, recording each request's
// latency from when it was due (so a stalled server is not hidden by
// requests not sent).
type Load struct {
	mu   sync.Mutex
	lat  []sample
	srv  *http.Server
	lis  net.Listener
	stop context.CancelFunc
	done sync.WaitGroup
}

type sample struct {
	at  time.Time
	lat time.Duration
}

// StartLoad starts the server (each request hashes 64 KiB, as a small
// app does some work) and clients sending rate requests per second in all.
func StartLoad(clients int, rate float64) (*Load, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	work := make([]byte, 64<<10)
	_, _ = randReader{rand.New(rand.NewPCG(1, 2))}.Read(work)
	l := &Load{lis: lis, srv: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		sum := sha256.Sum256(work)
		_, _ = io.WriteString(w, hex.EncodeToString(sum[:]))
	}), ReadHeaderTimeout: 10 * time.Second}}
	go func() { _ = l.srv.Serve(lis) }()
	ctx, stop := context.WithCancel(context.Background())
	l.stop = stop
	url := "http://" + lis.Addr().String() + "/"
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}, Timeout: 10 * time.Second}
	interval := time.Duration(float64(clients) / rate * float64(time.Second))
	for i := range clients {
		l.done.Add(1)
		go func() {
			defer l.done.Done()
			due := time.Now().Add(interval * time.Duration(i) / time.Duration(clients))
			for {
				if wait := time.Until(due); wait > 0 {
					t := time.NewTimer(wait)
					select {
					case <-ctx.Done():
						t.Stop()
						return
					case <-t.C:
					}
				}
				if ctx.Err() != nil {
					return
				}
				resp, err := client.Get(url)
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					_ = resp.Body.Close()
				}
				l.mu.Lock()
				l.lat = append(l.lat, sample{at: due, lat: time.Since(due)})
				l.mu.Unlock()
				due = due.Add(interval)
			}
		}()
	}
	return l, nil
}

// Between returns the latencies of the requests due in [from, to).
func (l *Load) Between(from, to time.Time) []time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []time.Duration
	for _, s := range l.lat {
		if !s.at.Before(from) && s.at.Before(to) {
			out = append(out, s.lat)
		}
	}
	return out
}

// Close stops the clients and the server.
func (l *Load) Close() {
	l.stop()
	l.done.Wait()
	_ = l.srv.Close()
}

// Percentile returns the p-th percentile (0 < p ≤ 100) of lat, 0 if empty.
func Percentile(lat []time.Duration, p float64) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	s := slices.Clone(lat)
	slices.Sort(s)
	i := int(float64(len(s))*p/100+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// LatencyStats summarises latencies.
type LatencyStats struct {
	P50, P99 time.Duration
	N        int
}
