package activate

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cutover-dev/cutover/agent/layout"
)

type metrics struct {
	lastResult *prometheus.GaugeVec
	lastTime   prometheus.Gauge
	duration   prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer, root string) (*metrics, error) {
	m := &metrics{
		lastResult: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "cutover_agent_last_activation_success",
			Help: "1 if the application's last activation on this agent succeeded, 0 if it failed (and was rolled back); absent before the first one.",
		}, []string{"application"}),
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
	if reg != nil {
		for _, c := range []prometheus.Collector{m.lastResult, m.lastTime, m.duration, newReleaseCollector(root)} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

// observe records an activation of apps that ended ok or not.
func (m *metrics) observe(apps []string, ok bool, took time.Duration) {
	v := 0.0
	if ok {
		v = 1
	}
	for _, a := range apps {
		m.lastResult.WithLabelValues(a).Set(v)
	}
	m.lastTime.SetToCurrentTime()
	m.duration.Observe(took.Seconds())
}

// releaseCollector computes cutover_agent_running_release_info at each
// scrape from the `current` links under the root: one series per
// application, so that the previous release's series is gone as soon as
// `current` is swapped (or swapped back).
type releaseCollector struct {
	root string
	desc *prometheus.Desc
}

func newReleaseCollector(root string) *releaseCollector {
	return &releaseCollector{root: root, desc: prometheus.NewDesc("cutover_agent_running_release_info",
		"1 for the release each application runs on this agent (the one its `current` link points to).",
		[]string{"application", "release"}, nil)}
}

// Describe sends the metric's description.
func (c *releaseCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect reads the `current` links.
func (c *releaseCollector) Collect(ch chan<- prometheus.Metric) {
	apps, err := layout.Apps(c.root)
	if err != nil {
		return
	}
	for _, app := range apps {
		if id, err := layout.Current(c.root, app); err == nil && id != "" {
			ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, 1, app, id)
		}
	}
}
