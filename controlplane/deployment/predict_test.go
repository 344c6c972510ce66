package deployment

import (
	"strings"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/controlplane/model"
)

func TestPredict(t *testing.T) {
	hello := []model.DeploymentApplication{{Name: "hello", ReleaseID: "r3"}}
	run := func(id string, at time.Time, arm, swap map[string]time.Duration, hooks time.Duration) *model.Deployment {
		d := &model.Deployment{ID: id, Environment: "prod", State: model.Deployed, Applications: hello, ActivateTime: at, HooksDuration: hooks}
		for name, a := range arm {
			d.Agents = append(d.Agents, model.DeploymentAgent{Name: name, ArmDuration: a, CommitDuration: swap[name]})
			d.ArmDuration, d.SwapDuration = max(d.ArmDuration, a), max(d.SwapDuration, swap[name])
		}
		return d
	}
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	d1 := run("d-1", t0, map[string]time.Duration{"fe1": ms(100), "fe2": ms(300)}, map[string]time.Duration{"fe1": ms(1000), "fe2": ms(1500)}, 0)
	d2 := run("d-2", t0.Add(time.Hour), map[string]time.Duration{"fe1": ms(200), "fe2": ms(200)}, map[string]time.Duration{"fe1": ms(2000), "fe2": ms(1000)}, ms(400))
	d2.SQLPending, d2.SQLDuration, d2.SQLDone = 2, ms(600), true
	d2.TransferDuration = 2 * time.Second
	d2.Agents[0].TransferredBytes = 20 << 20
	other := &model.Deployment{ID: "d-0", Environment: "prod", State: model.Deployed, Applications: []model.DeploymentApplication{{Name: "billing"}},
		ActivateTime: t0.Add(2 * time.Hour), ArmDuration: time.Hour, SwapDuration: time.Hour, Agents: []model.DeploymentAgent{{Name: "fe1", ArmDuration: time.Hour, CommitDuration: time.Hour}}}
	failed := &model.Deployment{ID: "d-9", Environment: "prod", State: model.Failed, Applications: hello, ArmDuration: time.Hour}
	history := []*model.Deployment{other, failed, d2, d1} // newest first

	tests := []struct {
		name   string
		sql    int
		shadow time.Duration
		agents map[string]int64
		parts  string // name=duration, in order
		total  time.Duration
	}{
		{"nothing measured", 0, 0, map[string]int64{"fe1": 0}, "default=5m0s", DefaultStage2Prediction},
		{"each front-end by its own times", 0, 0, map[string]int64{"fe1": 0, "fe2": 0},
			// arm: fe2 mean(300,200); hooks mean(0,400); swap: fe1 mean(1000,2000) = fe2's mean(1500,1000)… fe1 1.5s, fe2 1.25s; margin 2.15s/10+5ms
			"arm=250ms hooks=200ms swap=1.5s margin=200ms", ms(2150)},
		{"the shadow's time when longer than the last run's", 2, ms(900), map[string]int64{"fe1": 0, "fe2": 0},
			"arm=250ms hooks=200ms sql=900ms swap=1.5s margin=290ms", ms(3140)},
		{"a newcomer takes the whole step, and its bytes", 2, ms(100), map[string]int64{"fe1": 0, "fe3": 10 << 20},
			// transfer 10 MiB at 10 MiB/s; arm: fe3 ← mean whole step (300+200)/2; sql 2×300ms; swap: fe3 ← mean whole (1500+2000)/2
			"transfer=1s arm=250ms hooks=200ms sql=600ms swap=1.75s margin=385ms", ms(4185)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &model.Deployment{ID: "d-10", Environment: "prod", State: model.Prepared, Applications: hello, SQLPending: tt.sql}
			h := history
			if tt.name == "nothing measured" {
				h = []*model.Deployment{other, failed}
			}
			p := predict(predictInput{d: d, agents: tt.agents, history: h, shadowSQL: tt.shadow, now: t0})
			var got []string
			var sum time.Duration
			for _, part := range p.Parts {
				got = append(got, part.Name+"="+part.Duration.String())
				sum += part.Duration
				if part.Basis == "" {
					t.Errorf("part %s has no basis", part.Name)
				}
			}
			if strings.Join(got, " ") != tt.parts || p.Total != tt.total || sum != p.Total {
				t.Fatalf("parts %v total %v, want %s total %v", got, p.Total, tt.parts, tt.total)
			}
		})
	}
}
