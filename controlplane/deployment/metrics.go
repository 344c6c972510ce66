package deployment

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	finished *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		finished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cutover_deployments_finished_total",
			Help: "Deployments that reached a final state, by environment and state.",
		}, []string{"environment", "state"}),
	}
	if reg != nil {
		if err := reg.Register(m.finished); err != nil {
			return nil, err
		}
	}
	return m, nil
}
