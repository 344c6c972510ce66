package fleet

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cutover-dev/cutover/controlplane/model"
)

// connectedCollector computes cutover_agents_connected at each scrape from
// the open sessions, with a 0 for every known environment that has none, so
// that an environment whose agents all stay away after a controller restart
// still has its series.
type connectedCollector struct {
	f    *Fleet
	desc *prometheus.Desc
}

func registerMetrics(f *Fleet, reg prometheus.Registerer) error {
	if reg == nil {
		return nil
	}
	return reg.Register(&connectedCollector{f: f, desc: prometheus.NewDesc("cutover_agents_connected",
		"Agents with an open session, by environment.", []string{"environment"}, nil)})
}

// Describe sends the metric's description.
func (c *connectedCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect counts the sessions by environment.
func (c *connectedCollector) Collect(ch chan<- prometheus.Metric) {
	counts := map[string]float64{}
	var envs []*model.Environment
	if err := c.f.store.View(func(tx model.Tx) error {
		var err error
		envs, err = tx.Environments()
		return err
	}); err != nil {
		c.f.log.Error("metrics: read the environments", "err", err)
	}
	for _, e := range envs {
		counts[e.Name] = 0
	}
	c.f.mu.Lock()
	for _, s := range c.f.sessions {
		counts[s.agent.Environment]++
	}
	c.f.mu.Unlock()
	for env, n := range counts {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, n, env)
	}
}
