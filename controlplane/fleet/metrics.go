package fleet

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	connected *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		connected: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "cutover_fleet_agents_connected",
			Help: "Agents with an open session, by environment.",
		}, []string{"environment"}),
	}
	if reg != nil {
		if err := reg.Register(m.connected); err != nil {
			return nil, err
		}
	}
	return m, nil
}
