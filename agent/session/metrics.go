package session

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	connected prometheus.Gauge
	commands  *prometheus.CounterVec
	fenced    prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		connected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cutover_agent_controller_connected",
			Help: "1 while the agent has a session with the controller.",
		}),
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cutover_agent_commands_total",
			Help: "Commands run, by kind and outcome (done or failed).",
		}, []string{"kind", "outcome"}),
		fenced: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cutover_agent_fenced_commands_total",
			Help: "Commands refused because they came from a controller at a lower epoch than one seen before (a former leader).",
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.connected, m.commands, m.fenced} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}
