package console

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/cutover-dev/cutover/controlplane/deployment"
	"github.com/cutover-dev/cutover/controlplane/model"
)

// keepAlive is how often an idle event stream gets a comment, so that
// proxies keep it open.
const keepAlive = 15 * time.Second

// event is what the page's script gets at each change of a deployment.
type event struct {
	ID      string       `json:"id"`
	State   string       `json:"state"`
	Agents  []agentEvent `json:"agents"`
	Spread  string       `json:"spread,omitempty"`
	Settled bool         `json:"settled"`
	Time    time.Time    `json:"time"`
}

type agentEvent struct {
	Name        string `json:"name"`
	State       string `json:"state"`
	Bytes       int64  `json:"bytes"`
	Transferred int64  `json:"transferred"`
	Percent     int    `json:"percent"`
	Error       string `json:"error,omitempty"`
}

func eventOf(d *model.Deployment, now time.Time) event {
	ev := event{ID: d.ID, State: string(d.State), Settled: deployment.Settled(d), Time: now, Agents: []agentEvent{}, Spread: spread(d)}
	for _, a := range d.Agents {
		ev.Agents = append(ev.Agents, agentEvent{Name: a.Name, State: string(a.State), Bytes: a.ReleaseBytes,
			Transferred: a.TransferredBytes, Percent: agentPercent(a), Error: a.Error})
	}
	return ev
}

// events streams a deployment as server-sent events ("deployment", JSON
// of event) from deployment.Service.Watch, as AdminService's
// WatchDeployment does: at once, then at each change, until it is
// settled, the browser goes away or the console stops.
func (c *Console) events(w http.ResponseWriter, r *http.Request, rq *request) error {
	flusher, ok := w.(http.Flusher)
	if !ok {
		return fmt.Errorf("this connection cannot stream")
	}
	ctx, cancel := c.withStop(r.Context())
	defer cancel()
	ch, err := c.deps.Watch(ctx, rq.target.deployment)
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	flusher.Flush()
	tick := time.NewTicker(keepAlive)
	defer tick.Stop()
	var d *model.Deployment // as the changes so far made it
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return nil
			}
		case change := <-ch:
			d = change.Apply(d)
			b, err := json.Marshal(eventOf(d, c.clock()))
			if err != nil {
				return nil
			}
			if _, err := fmt.Fprintf(w, "event: deployment\ndata: %s\n\n", b); err != nil {
				return nil
			}
			if deployment.Settled(d) {
				_, _ = fmt.Fprint(w, "event: end\ndata: {}\n\n")
				flusher.Flush()
				return nil
			}
		}
		flusher.Flush()
	}
}
