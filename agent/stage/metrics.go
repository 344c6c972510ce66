package stage

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	stagedBytes    prometheus.Gauge
	chunksFetched  prometheus.Counter
	wireBytes      prometheus.Counter
	chunkBadHashes prometheus.Counter
	fetchedBytes   prometheus.Counter
	fetchSeconds   prometheus.Counter
	clonedBytes    *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		stagedBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cutover_agent_staged_bytes",
			Help: "Total size of the releases staged on this agent.",
		}),
		chunksFetched: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cutover_agent_chunks_fetched_total",
			Help: "Chunks received from the controller and committed.",
		}),
		wireBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cutover_agent_fetched_wire_bytes_total",
			Help: "Bytes of chunk data received over the wire.",
		}),
		chunkBadHashes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cutover_agent_chunk_verify_failures_total",
			Help: "Chunks refused because their SHA-256 did not match their id.",
		}),
		fetchedBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cutover_agent_fetched_bytes_total",
			Help: "Bytes of chunk data (uncompressed) received, verified, written to the release's files and committed.",
		}),
		fetchSeconds: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cutover_agent_fetch_seconds_total",
			Help: "Time spent fetching chunks, from the first request to the last commit (verifying, writing, fsync and recording included; chunks copied from releases the agent holds are not).",
		}),
		clonedBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cutover_agent_cloned_bytes_total",
			Help: "Bytes of files staged as clones of identical files of staged releases, by method (reflink, link: a hard link to the same inode, copy_file_range, copy); not hashed again.",
		}, []string{"method"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.stagedBytes, m.chunksFetched, m.wireBytes, m.chunkBadHashes, m.fetchedBytes, m.fetchSeconds, m.clonedBytes} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}
