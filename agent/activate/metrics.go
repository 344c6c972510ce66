package activate

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	lastResult prometheus.Gauge
	lastTime   prometheus.Gauge
	duration   prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		lastResult: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cutover_agent_last_activation_success",
			Help: "1 if the last activation on this agent succeeded, 0 if it failed, -1 before any.",
		}),
		lastTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cutover_agent_last_activation_timestamp_seconds",
			Help: "When the last activation on this agent finished (Unix time).",
		}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "cutover_agent_activation_duration_seconds",
			Help:    "How long activations took, swap to healthy.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 14),
		}),
	}
	m.lastResult.Set(-1)
	if reg != nil {
		for _, c := range []prometheus.Collector{m.lastResult, m.lastTime, m.duration} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

func (m *metrics) observe(ok bool, took time.Duration) {
	v := 0.0
	if ok {
		v = 1
	}
	m.lastResult.Set(v)
	m.lastTime.SetToCurrentTime()
	m.duration.Observe(took.Seconds())
}
