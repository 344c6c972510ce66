package main

import (
	"fmt"
	"strings"

	"github.com/cutover-dev/cutover/internal/probe"
)

// startTraffic probes every front-end, from two clients each (one with a
// new connection per request, one keeping its connection), until the
// probe is stopped: the demo's way of showing that a continue and a
// rollback drop no request.
func (d *demo) startTraffic() *probe.Probe {
	var targets []probe.Target
	for _, a := range d.cluster.Agents {
		targets = append(targets, a.ProbeTarget())
	}
	return probe.Start(probe.Config{Targets: targets, Fresh: 1, KeepAlive: 1})
}

// trafficSummary says what the probe saw; a refused connection counts as
// a failed request.
func trafficSummary(r probe.Report) string {
	var parts []string
	for _, v := range r.Versions() {
		parts = append(parts, fmt.Sprintf("%d by %s", r.Answers(v), v))
	}
	return fmt.Sprintf("%d requests answered (%s), %d failed",
		r.Requests()-r.Refused()-r.Failed(), strings.Join(parts, ", "), r.Refused()+r.Failed())
}
