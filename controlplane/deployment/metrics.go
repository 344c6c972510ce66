package deployment

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cutover-dev/cutover/controlplane/store"
	"github.com/cutover-dev/cutover/pkg/window"
)

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

// stateCollector computes, at each scrape, gauges from the stored
// environments and deployments and the clock, so that they can never
// disagree with the store.
type stateCollector struct {
	s                                       *Service
	windowOpen, prepared, nextExpiry, sched *prometheus.Desc
}

func newStateCollector(s *Service) *stateCollector {
	env := []string{"environment"}
	return &stateCollector{s: s,
		windowOpen: prometheus.NewDesc("cutover_deployment_window_open",
			"1 if a deployment window of the environment is open now, else 0; only environments that have windows.", env, nil),
		prepared: prometheus.NewDesc("cutover_deployments_prepared",
			"PREPARED deployments of the environment (waiting for continue).", env, nil),
		nextExpiry: prometheus.NewDesc("cutover_deployment_prepared_next_expiry_timestamp_seconds",
			"When the environment's next PREPARED deployment expires (Unix time); absent when none is PREPARED.", env, nil),
		sched: prometheus.NewDesc("cutover_deployments_scheduled",
			"PREPARED deployments of the environment whose stage 2 is scheduled for a window (continue --at-window).", env, nil),
	}
}

// Describe sends the descriptions of the gauges.
func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.windowOpen, c.prepared, c.nextExpiry, c.sched} {
		ch <- d
	}
}

// Collect reads the store and sends the gauges.
func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	var envs []*store.Environment
	var deps []*store.Deployment
	if err := c.s.store.View(func(tx *store.Tx) error {
		var err error
		if envs, err = tx.Environments(); err != nil {
			return err
		}
		deps, err = tx.Deployments("")
		return err
	}); err != nil {
		c.s.log.Error("metrics: read the store", "err", err)
		return
	}
	now := c.s.clock()
	for _, e := range envs {
		if sched, err := window.ParseAll(e.Windows); err == nil && len(sched) > 0 {
			open, _ := sched.Open(now)
			ch <- prometheus.MustNewConstMetric(c.windowOpen, prometheus.GaugeValue, map[bool]float64{true: 1}[open], e.Name)
		}
		var prepared, scheduled float64
		var next time.Time
		for _, d := range deps {
			if d.Environment != e.Name || d.State != store.Prepared {
				continue
			}
			prepared++
			if !d.ScheduledTime.IsZero() {
				scheduled++
			}
			if next.IsZero() || d.ExpireTime.Before(next) {
				next = d.ExpireTime
			}
		}
		ch <- prometheus.MustNewConstMetric(c.prepared, prometheus.GaugeValue, prepared, e.Name)
		ch <- prometheus.MustNewConstMetric(c.sched, prometheus.GaugeValue, scheduled, e.Name)
		if !next.IsZero() {
			ch <- prometheus.MustNewConstMetric(c.nextExpiry, prometheus.GaugeValue, float64(next.UnixNano())/1e9, e.Name)
		}
	}
}
