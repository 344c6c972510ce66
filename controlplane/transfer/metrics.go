package transfer

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	sent       *prometheus.CounterVec
	saved      *prometheus.CounterVec
	storeReads prometheus.Counter
	corrupt    prometheus.Counter
	// egressWait and egressLimit: Config.MaxEgress at work.
	egressWait  prometheus.Counter
	egressLimit prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cutover_transfer_bytes_total",
			Help: "Release bytes sent to agents (on the wire, after compression), by environment.",
		}, []string{"environment"}),
		saved: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cutover_transfer_saved_bytes_total",
			Help: "Release bytes not sent because the agent already had them, by environment.",
		}, []string{"environment"}),
		storeReads: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cutover_transfer_chunk_store_reads_total",
			Help: "Chunks read from the store to send them (a chunk sent to many agents at once is read once).",
		}),
		corrupt: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cutover_transfer_corrupt_chunks_total",
			Help: "Chunks found corrupt in the controller's store (checked when an agent received one that did not verify) and deleted.",
		}),
		egressWait: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cutover_transfer_egress_throttled_seconds_total",
			Help: "Time transfers waited for the controller's egress cap (--max-egress), summed over the transfers that waited.",
		}),
		egressLimit: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cutover_transfer_egress_limit_bytes_per_second",
			Help: "The controller's egress cap on release chunk data (--max-egress); 0: none.",
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.sent, m.saved, m.storeReads, m.corrupt, m.egressWait, m.egressLimit} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}
