package fleetsim

import (
	"context"
	"fmt"
	"sync"

	"github.com/cutover-dev/cutover/agent/activate"
	"github.com/cutover-dev/cutover/agent/process"
	"github.com/cutover-dev/cutover/pkg/errkind"
)

// noProcesses is the simulator's activate.Processes: it runs nothing, and
// a restart is immediate. It remembers which release each app "runs", so
// that the activator sees what a real supervisor would tell it. It is the
// only part of a simulated agent that is not the real agent's.
type noProcesses struct {
	mu      sync.Mutex
	running map[string]string // app → release
}

var _ activate.Processes = (*noProcesses)(nil)

func newNoProcesses() *noProcesses { return &noProcesses{running: map[string]string{}} }

// Restart records that spec's release runs.
func (p *noProcesses) Restart(_ context.Context, spec process.Spec) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.running[spec.Application] = spec.Release
	return nil
}

// Stop records that app runs nothing.
func (p *noProcesses) Stop(_ context.Context, app string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.running, app)
	return nil
}

// Info says which release app runs (no process id: nothing runs).
func (p *noProcesses) Info(app string) (process.Info, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	rel, ok := p.running[app]
	return process.Info{Release: rel}, ok
}

// Overlap is refused with errkind.FailedPrecondition, which makes the
// activator restart instead (immediate here): a *process.Handover can only
// be made by a real supervisor.
func (p *noProcesses) Overlap(spec process.Spec) (*process.Handover, error) {
	return nil, fmt.Errorf("overlap %q: the simulator runs no processes; restart it instead: %w", spec.Application, errkind.FailedPrecondition)
}
