package activate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/cutover-dev/cutover/agent/process"
	"github.com/cutover-dev/cutover/pkg/errkind"
)

// This file holds the commit with overlap, for apps with run.listen: the
// agent owns their listening sockets (agent/process), so the new release's
// process starts beside the old one on the same sockets and is checked
// healthy through a private socket only it serves on; the old one is told
// to stop only then (after the fleet is ready, when the commit is held),
// and finishes the requests it has within its stop grace. No request is
// refused: connections wait in the sockets' backlog and either process
// accepts them. If the new process is not healthy, it is stopped and the
// old one never stopped serving.

// handover is one app's new process started beside its old one.
type handover struct {
	app string
	h   *process.Handover
}

// overlaps says whether ap's processes are handed over with overlap.
func (ap *app) overlaps() bool { return len(ap.spec.Listen) > 0 }

// startBeside starts ap's process beside the app's running one and waits
// for its health check through its private socket. On failure the new
// process is stopped: the old one serves as before.
func (a *Activator) startBeside(ctx context.Context, log *slog.Logger, ap *app) (*handover, error) {
	h, err := a.cfg.Processes.Overlap(ap.spec)
	if errors.Is(err, errkind.FailedPrecondition) {
		return nil, err // the caller restarts instead
	}
	if err != nil {
		return nil, fmt.Errorf("start %q on release %s beside the running one: %w", ap.spec.Application, ap.spec.Release, err)
	}
	if ap.healthPath != "" {
		if err := waitHealthy(ctx, socketClient(h.HealthSocket()), "http://"+healthHost+ap.healthPath, ap.wait, a.cfg.HealthInterval); err != nil {
			if aerr := h.Abort(context.WithoutCancel(ctx)); aerr != nil {
				err = errors.Join(err, fmt.Errorf("stop the new process: %w", aerr))
			}
			return nil, fmt.Errorf("%q on release %s, through its private health socket (the old release never stopped serving): %w",
				ap.spec.Application, ap.spec.Release, err)
		}
		log.Info("new process healthy beside the old one", "health", ap.healthPath)
	}
	return &handover{app: ap.spec.Application, h: h}, nil
}

// finishAll tells each old process to stop, and returns when the first
// was told (the switch) and the longest time both versions served.
func finishAll(hs []*handover) (switched time.Time, overlap time.Duration) {
	for _, x := range hs {
		t := x.h.Finish()
		if switched.IsZero() || t.Before(switched) {
			switched = t
		}
		overlap = max(overlap, t.Sub(x.h.Started()))
	}
	return switched, overlap
}

// abortAll stops the new processes of hs; the old ones serve on.
func abortAll(ctx context.Context, hs []*handover) error {
	var errs []error
	for _, x := range hs {
		if err := x.h.Abort(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop the new process of %q: %w", x.app, err))
		}
	}
	return errors.Join(errs...)
}

// socketClient is an HTTP client whose every request goes to the unix
// socket path.
func socketClient(path string) *http.Client {
	var d net.Dialer
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", path)
		},
		DisableKeepAlives: true,
	}}
}

// healthHost is the Host of the health check sent to the private socket.
const healthHost = "cutover-health"
