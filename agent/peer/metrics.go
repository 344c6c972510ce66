package peer

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	received prometheus.Counter
	corrupt  prometheus.Counter
	failures prometheus.Counter
	served   prometheus.Counter
	refused  prometheus.Counter
}

// newMetrics makes the peer metrics; reg nil: not registered.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		received: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cutover_transfer_peer_received_bytes_total",
			Help: "Release chunk bytes this agent received from peers, verified (the rest came from the controller).",
		}),
		corrupt: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cutover_transfer_peer_corrupt_total",
			Help: "Chunks a peer sent that did not hash to their id; the peer is dropped for the rest of the deployment.",
		}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cutover_transfer_peer_failures_total",
			Help: "Fetches from a peer that failed (unreachable, refused, cut off mid-transfer, stalled); what it did not send was asked of the next peer or the controller.",
		}),
		served: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cutover_transfer_peer_served_bytes_total",
			Help: "Release chunk bytes this agent served to its peers.",
		}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cutover_transfer_peer_refused_total",
			Help: "Peer fetches refused because the caller is not an agent of this agent's environment.",
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.received, m.corrupt, m.failures, m.served, m.refused} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}
