package deployment

import (
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/pkg/window"
)

// DurationBuckets are the buckets (seconds) of the duration histograms: a
// swap takes well under a second, a build or a transfer minutes.
var DurationBuckets = []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600}

// The values of the result label of cutover_deployment_rollbacks_total.
const (
	resultRolledBack = "rolled_back"
	resultFailed     = "failed"
)

// The values of the stage label of cutover_stage_duration_seconds.
const (
	stageBuild    = "build"
	stageTransfer = "transfer"
	stageSQL      = "sql"
	stageSwap     = "swap"
)

type metrics struct {
	// finished is collected by stateCollector, which first creates every
	// {environment, state} series of the known environments at 0.
	finished *prometheus.CounterVec
	// rollbacks counts the ends of rollbacks by command; collected like
	// finished.
	rollbacks *prometheus.CounterVec
	stages    *prometheus.HistogramVec
	builds    *prometheus.HistogramVec
	// progressHeld counts the PROGRESS reports held in memory instead of
	// written at once; progressFlushes the writes that stored held ones
	// alone (progress.go).
	progressHeld    prometheus.Counter
	progressFlushes prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		finished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cutover_deployments_total",
			Help: "Deployments that reached a final state, by environment and that state (deployed, failed, aborted, expired, rolled_back: stage 2 swapped back by itself, or a DEPLOYED deployment rolled back by command, which was counted as deployed before and, its rollback also counted in cutover_deployment_rollbacks_total).",
		}, []string{"environment", "state"}),
		rollbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cutover_deployment_rollbacks_total",
			Help: "Rollbacks by command (cutoverctl deploy rollback) of DEPLOYED deployments that ended, by environment and result: rolled_back (every agent went back) or failed (the deployment stays DEPLOYED with the error).",
		}, []string{"environment", "result"}),
		stages: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "cutover_stage_duration_seconds",
			Help:    "How long each step of a deployment took: build and transfer (stage 1), sql and swap (stage 2).",
			Buckets: DurationBuckets,
		}, []string{"environment", "stage"}),
		builds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "cutover_build_duration_seconds",
			Help:    "How long one successful build of an application took, copy and chunking included.",
			Buckets: DurationBuckets,
		}, []string{"application"}),
		progressHeld: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cutover_deployment_progress_reports_held_total",
			Help: "PROGRESS reports of stage and arm commands held in memory and stored with the next write of their deployment, instead of one write each.",
		}),
		progressFlushes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cutover_deployment_progress_writes_total",
			Help: "Writes of a deployment that stored held PROGRESS reports alone (at most one per deployment every 250 ms by default); held reports are also stored by the deployment's next change.",
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.stages, m.builds, m.progressHeld, m.progressFlushes} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

// stateLabel is the value of the state label for a final state: "deployed",
// "rolled_back", …
func stateLabel(s model.DeploymentState) string { return strings.ToLower(string(s)) }

// stageDurations are a deployment's step durations, by stage label.
func stageDurations(d *model.Deployment) map[string]time.Duration {
	return map[string]time.Duration{stageBuild: d.BuildDuration, stageTransfer: d.TransferDuration,
		stageSQL: d.SQLDuration, stageSwap: d.SwapDuration}
}

// observeStages observes each step duration that a committed change of a
// deployment set (zero before, positive after), once.
func (m *metrics) observeStages(before map[string]time.Duration, after *model.Deployment) {
	for stage, took := range stageDurations(after) {
		if before[stage] == 0 && took > 0 {
			m.stages.WithLabelValues(after.Environment, stage).Observe(took.Seconds())
		}
	}
}

// stateCollector computes, at each scrape, gauges from the stored
// environments and deployments and the clock, so that they can never
// disagree with the store. It also collects cutover_deployments_total and
// cutover_deployment_rollbacks_total, after creating their series at 0 for
// every known environment, so that increase() sees an environment's first
// failure.
type stateCollector struct {
	s                                                 *Service
	windowOpen, prepared, nextExpiry, sched, atWindow *prometheus.Desc
}

func newStateCollector(s *Service) *stateCollector {
	env := []string{"environment"}
	return &stateCollector{s: s,
		windowOpen: prometheus.NewDesc("cutover_deployment_window_open",
			"1 if a deployment window of the environment is open now, else 0; only environments that have windows.", env, nil),
		prepared: prometheus.NewDesc("cutover_deployments_prepared",
			"PREPARED deployments of the environment (waiting for continue).", env, nil),
		nextExpiry: prometheus.NewDesc("cutover_deployment_prepared_next_expiry_timestamp_seconds",
			"When the environment's next PREPARED deployment expires (Unix time); 0 when none is PREPARED.", env, nil),
		sched: prometheus.NewDesc("cutover_deployments_scheduled",
			"Deployments able to run in the environment's window: PREPARED, not expired, approved where approval is required.", env, nil),
		atWindow: prometheus.NewDesc("cutover_deployments_continue_scheduled",
			"PREPARED deployments of the environment whose stage 2 the controller will start at a window (continue --at-window).", env, nil),
	}
}

// Describe sends the descriptions of the gauges and of the two counters.
func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.windowOpen, c.prepared, c.nextExpiry, c.sched, c.atWindow} {
		ch <- d
	}
	c.s.metrics.finished.Describe(ch)
	c.s.metrics.rollbacks.Describe(ch)
}

// Collect reads the store and sends the gauges, cutover_deployments_total
// and cutover_deployment_rollbacks_total.
func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	defer c.s.metrics.rollbacks.Collect(ch)
	defer c.s.metrics.finished.Collect(ch)
	var envs []*model.Environment
	var deps []*model.Deployment
	if err := c.s.store.View(func(tx model.Tx) error {
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
		for _, st := range model.FinalStates {
			c.s.metrics.finished.WithLabelValues(e.Name, stateLabel(st))
		}
		for _, r := range []string{resultRolledBack, resultFailed} {
			c.s.metrics.rollbacks.WithLabelValues(e.Name, r)
		}
		if sched, err := window.ParseAll(e.Windows); err == nil && len(sched) > 0 {
			open, _ := sched.Open(now)
			ch <- prometheus.MustNewConstMetric(c.windowOpen, prometheus.GaugeValue, map[bool]float64{true: 1}[open], e.Name)
		}
		var prepared, runnable, atWindow float64
		var next time.Time
		for _, d := range deps {
			if d.Environment != e.Name || d.State != model.Prepared {
				continue
			}
			prepared++
			if !d.ScheduledTime.IsZero() {
				atWindow++
			}
			if now.Before(d.ExpireTime) && checkApproval(d, e) == nil {
				runnable++
			}
			if next.IsZero() || d.ExpireTime.Before(next) {
				next = d.ExpireTime
			}
		}
		ch <- prometheus.MustNewConstMetric(c.prepared, prometheus.GaugeValue, prepared, e.Name)
		ch <- prometheus.MustNewConstMetric(c.sched, prometheus.GaugeValue, runnable, e.Name)
		ch <- prometheus.MustNewConstMetric(c.atWindow, prometheus.GaugeValue, atWindow, e.Name)
		expiry := 0.0
		if !next.IsZero() {
			expiry = float64(next.UnixNano()) / 1e9
		}
		ch <- prometheus.MustNewConstMetric(c.nextExpiry, prometheus.GaugeValue, expiry, e.Name)
	}
}
