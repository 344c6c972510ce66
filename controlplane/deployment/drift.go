package deployment

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cutover-dev/cutover/controlplane/fleet"
	"github.com/cutover-dev/cutover/controlplane/model"
)

// This file holds drift: a front-end drifts when, for an application its
// environment records (Environment.DeployedVersions: what the last
// DEPLOYED deployment brought, or what a rollback went back to), the
// release it reports running (its last status) is another one, or none.
// Applications the environment records nothing for are not compared.
// While a deployment of the environment is ACTIVATING (a reconcile
// included) or being rolled back by command, its front-ends are between
// two records and none is said to drift.

// Drift returns how apps, what one front-end reports, differ from what
// env records: one clause per recorded application it does not run,
// sorted by application ("hello: runs r-abc, recorded r-def"); nil when
// it runs every recorded release. It is pure.
func Drift(env *model.Environment, apps []model.AgentApplication) []string {
	var out []string
	for _, name := range slices.Sorted(maps.Keys(env.DeployedVersions)) {
		want := env.DeployedVersions[name].ReleaseID
		if want == "" {
			continue
		}
		got := ""
		if i := slices.IndexFunc(apps, func(a model.AgentApplication) bool { return a.Name == name }); i >= 0 {
			got = apps[i].RunningReleaseID
		}
		if got == want {
			continue
		}
		runs := "runs " + short(got)
		if got == "" {
			runs = "runs nothing"
		}
		out = append(out, fmt.Sprintf("%s: %s, recorded %s", name, runs, short(want)))
	}
	return out
}

// driftPaused returns the deployment of env, among deps, during which no
// front-end of env is said to drift (ACTIVATING, or rolling back by
// command), or nil.
func driftPaused(env string, deps []*model.Deployment) *model.Deployment {
	for _, d := range deps {
		if d.Environment == env && (d.State == model.Activating || (d.State == model.Deployed && d.RollingBack)) {
			return d
		}
	}
	return nil
}

// AgentDrift is how one front-end compares with what its environment
// records.
type AgentDrift struct {
	Agent       string
	Environment string
	Connected   bool
	// Reasons are Drift's clauses; empty: not drifted.
	Reasons []string
}

// Drifted says whether the front-end drifts.
func (a AgentDrift) Drifted() bool { return len(a.Reasons) > 0 }

// Reason joins the reasons, "" when not drifted.
func (a AgentDrift) Reason() string { return strings.Join(a.Reasons, "; ") }

// Drifts compares every known front-end of env (all environments if "")
// with what its environment records, from the agents' last statuses. The
// result is sorted by environment and name.
func (s *Service) Drifts(env string) ([]AgentDrift, error) {
	views, err := s.fleet.Agents(env)
	if err != nil {
		return nil, err
	}
	var envs []*model.Environment
	var deps []*model.Deployment
	if err := s.store.View(func(tx model.Tx) error {
		var err error
		if envs, err = tx.Environments(); err != nil {
			return err
		}
		deps, err = tx.Deployments(env)
		return err
	}); err != nil {
		return nil, err
	}
	return drifts(views, envs, deps), nil
}

// drifts is Drifts on what was read: each of views compared with its
// environment among envs, unless a deployment among deps pauses it. It is
// pure.
func drifts(views []fleet.AgentView, envs []*model.Environment, deps []*model.Deployment) []AgentDrift {
	out := make([]AgentDrift, 0, len(views))
	for _, v := range views {
		a := AgentDrift{Agent: v.Name, Environment: v.Environment, Connected: v.Connected}
		i := slices.IndexFunc(envs, func(e *model.Environment) bool { return e.Name == v.Environment })
		if i >= 0 && driftPaused(v.Environment, deps) == nil {
			a.Reasons = Drift(envs[i], v.Applications)
		}
		out = append(out, a)
	}
	return out
}

// driftCollector computes cutover_agent_drifted at each scrape: 1 for a
// front-end that drifts, else 0, for every known front-end.
type driftCollector struct {
	s    *Service
	desc *prometheus.Desc
}

func newDriftCollector(s *Service) *driftCollector {
	return &driftCollector{s: s, desc: prometheus.NewDesc("cutover_agent_drifted",
		"1 if the front-end reports running, for an application its environment records, another release than the recorded one (drifted: cutoverctl agent list says how; cutoverctl env reconcile brings it back), else 0. Always 0 while a deployment of the environment is ACTIVATING or rolling back.",
		[]string{"environment", "agent"}, nil)}
}

// Describe sends the gauge's description.
func (c *driftCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect sends the gauge of every known front-end.
func (c *driftCollector) Collect(ch chan<- prometheus.Metric) {
	ds, err := c.s.Drifts("")
	if err != nil {
		c.s.log.Error("metrics: compare the front-ends with their environments", "err", err)
		return
	}
	for _, d := range ds {
		v := 0.0
		if d.Drifted() {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, v, d.Environment, d.Agent)
	}
}
