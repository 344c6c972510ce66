package deployment

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/cutover-dev/cutover/controlplane/fleet"
	"github.com/cutover-dev/cutover/controlplane/model"
)

// Prediction of stage 2's duration, from what this deployment will do:
//
//   - transfer: the bytes still missing on the front-ends that will take
//     part (the arm stages them), at the rate the environment's earlier
//     stagings ran (defaultTransferRate without any);
//   - arm: per front-end, the mean of its arm times in the latest
//     predictionRuns earlier stage 2 runs of an application of this
//     deployment in the environment; the step takes the slowest front-end;
//     one with no arm of its own takes the mean of those runs' whole step;
//   - hooks: the mean before_activate + after_activate time of those runs;
//   - sql: with migrations pending, their number times the time per
//     migration those runs took (sqlPerMigration without any);
//   - swap: per front-end, as arm, its commit times (swap, restart,
//     health, validate hooks);
//   - margin: a tenth of the sum, plus predictionFloor.
//
// Means, not maxima, and a small margin: a prediction is meant to hold
// (predicted ÷ actual near 1), and the window check (fits) adds nothing
// of its own; the slowest front-end and every step are already counted.
//
// With no earlier run of these applications in the environment (nothing
// measured), the prediction is DefaultStage2Prediction.
const (
	// DefaultStage2Prediction is the predicted stage 2 duration when no
	// earlier stage 2 of the deployment's applications ran in the
	// environment.
	DefaultStage2Prediction = 5 * time.Minute
	// predictionRuns is how many of the latest stage 2 runs count.
	predictionRuns = 3
	// predictionFloor is added to the margin: the controller's own steps.
	predictionFloor = 5 * time.Millisecond
	// sqlPerMigration is the time per pending migration when no earlier
	// run of the environment measured one.
	sqlPerMigration = time.Second
	// defaultTransferRate (bytes/s) is used when no earlier staging of
	// the environment measured one.
	defaultTransferRate = 10 << 20
)

// The names of the parts of a prediction.
const (
	partTransfer = "transfer"
	partArm      = "arm"
	partHooks    = "hooks"
	partSQL      = "sql"
	partSwap     = "swap"
	partMargin   = "margin"
	partDefault  = "default"
)

// predictInput is what a prediction is made from.
type predictInput struct {
	// d is the deployment (its applications, SQLPending, agents).
	d *model.Deployment
	// agents are the front-ends that will take part (connected), each
	// with the bytes it still lacks.
	agents map[string]int64
	// history are the environment's deployments, newest first (as
	// store.Tx.Deployments returns them): the SQL time per migration and
	// the transfer rate are taken from the newest runs.
	history []*model.Deployment
	// shadowSQL is how long this deployment's script took on the shadow
	// database at prepare (no rows: a floor); 0 if it was not checked.
	shadowSQL time.Duration
	now       time.Time
}

// predict makes the prediction of stage 2 of in.d. It is pure.
func predict(in predictInput) *model.Prediction {
	d := in.d
	var runs []*model.Deployment
	for _, h := range in.history {
		if h.ID == d.ID || !(h.State == model.Deployed || (h.State == model.RolledBack && h.SwapDuration > 0)) || !sharesApp(h, d) {
			continue
		}
		runs = append(runs, h)
	}
	slices.SortStableFunc(runs, func(a, b *model.Deployment) int { return b.ActivateTime.Compare(a.ActivateTime) })
	runs = runs[:min(len(runs), predictionRuns)]
	p := &model.Prediction{Time: in.now}
	if len(runs) == 0 {
		p.Parts = []model.PredictionPart{{Name: partDefault, Duration: DefaultStage2Prediction,
			Basis: fmt.Sprintf("no earlier stage 2 of %s in environment %s to measure by", appNames(d), d.Environment)}}
		p.Total = DefaultStage2Prediction
		return p
	}
	add := func(name string, dur time.Duration, basis string) {
		if dur > 0 {
			p.Parts = append(p.Parts, model.PredictionPart{Name: name, Duration: dur.Round(time.Millisecond), Basis: basis})
		}
	}

	var missing int64
	for _, n := range in.agents {
		missing = max(missing, n)
	}
	if missing > 0 {
		rate, basis := transferRate(in.history)
		add(partTransfer, time.Duration(float64(missing)/rate*float64(time.Second)), fmt.Sprintf("%d bytes still missing on a front-end, at %s", missing, basis))
	}
	arm, armBasis := perAgent(runs, in.agents, func(a model.DeploymentAgent) time.Duration { return a.ArmDuration },
		func(h *model.Deployment) time.Duration { return h.ArmDuration })
	add(partArm, arm, armBasis)
	var hooks time.Duration
	for _, h := range runs {
		hooks += h.HooksDuration
	}
	add(partHooks, hooks/time.Duration(len(runs)), fmt.Sprintf("the mean before_activate and after_activate steps of the last %d runs", len(runs)))
	if d.SQLPending > 0 {
		per, basis, measured := sqlPerMigration, "no earlier SQL run in the environment: 1s per migration", false
		for _, h := range in.history {
			if h.SQLPending > 0 && h.SQLDuration > 0 && h.SQLDone {
				per, measured = h.SQLDuration/time.Duration(h.SQLPending), true
				basis = fmt.Sprintf("%s per migration, as in %s", per.Round(time.Millisecond), h.ID)
				break // history is newest first
			}
		}
		sql := per * time.Duration(d.SQLPending)
		if in.shadowSQL > 0 && (!measured || in.shadowSQL > sql) {
			sql, basis = in.shadowSQL, fmt.Sprintf("measured on the shadow database at prepare (%s, without rows: a floor)", in.shadowSQL.Round(time.Millisecond))
		}
		add(partSQL, sql, fmt.Sprintf("%d migration(s); %s", d.SQLPending, basis))
	}
	swap, swapBasis := perAgent(runs, in.agents, func(a model.DeploymentAgent) time.Duration { return a.CommitDuration },
		func(h *model.Deployment) time.Duration { return h.SwapDuration })
	add(partSwap, swap, swapBasis)
	var sum time.Duration
	for _, part := range p.Parts {
		sum += part.Duration
	}
	add(partMargin, sum/10+predictionFloor, "a tenth of the rest, plus the controller's own steps")
	for _, part := range p.Parts {
		p.Total += part.Duration
	}
	return p
}

// perAgent returns the longest, over the front-ends that will take part,
// of each one's mean step time (of) in runs, and says whose; a front-end
// without a time of its own takes the mean of the runs' whole step
// (whole).
func perAgent(runs []*model.Deployment, agents map[string]int64, of func(model.DeploymentAgent) time.Duration, whole func(*model.Deployment) time.Duration) (time.Duration, string) {
	var wholeSum time.Duration
	for _, h := range runs {
		wholeSum += whole(h)
	}
	wholeMean := wholeSum / time.Duration(max(len(runs), 1))
	var worst time.Duration
	var basis string
	for _, name := range slices.Sorted(maps.Keys(agents)) {
		var sum time.Duration
		n := 0
		for _, h := range runs {
			for _, a := range h.Agents {
				if a.Name == name && of(a) > 0 {
					sum, n = sum+of(a), n+1
				}
			}
		}
		own, b := wholeMean, fmt.Sprintf("%s has none of its own: the mean whole step", name)
		if n > 0 {
			own, b = sum/time.Duration(n), fmt.Sprintf("%s's mean over %d run(s)", name, n)
		}
		if own > worst || basis == "" {
			worst, basis = own, b
		}
	}
	if worst == 0 {
		return 0, ""
	}
	return worst, fmt.Sprintf("the slowest front-end: %s (of the last %d runs)", basis, len(runs))
}

// transferRate is the environment's measured staging rate (bytes/s) over
// its latest stagings, and says so.
func transferRate(history []*model.Deployment) (float64, string) {
	var bytes int64
	var took time.Duration
	n := 0
	for _, h := range history {
		if h.TransferDuration <= 0 || n >= predictionRuns*3 {
			continue
		}
		var b int64
		for _, a := range h.Agents {
			b = max(b, a.TransferredBytes) // agents fetch side by side: the largest one sets the time
		}
		if b > 0 {
			bytes, took, n = bytes+b, took+h.TransferDuration, n+1
		}
	}
	if n == 0 || took <= 0 {
		return defaultTransferRate, fmt.Sprintf("%d MiB/s (nothing measured yet)", defaultTransferRate>>20)
	}
	rate := float64(bytes) / took.Seconds()
	return rate, fmt.Sprintf("%.1f MiB/s, the rate of the last %d stagings", rate/(1<<20), n)
}

func sharesApp(a, b *model.Deployment) bool {
	for _, x := range a.Applications {
		if slices.ContainsFunc(b.Applications, func(y model.DeploymentApplication) bool { return y.Name == x.Name }) {
			return true
		}
	}
	return false
}

func appNames(d *model.Deployment) string {
	var names []string
	for _, a := range d.Applications {
		names = append(names, a.Name)
	}
	return fmt.Sprint(names)
}

// predictFor makes d's prediction now, with the agents of its environment
// connected now (each with the bytes it lacks), and records it.
func (s *Service) predictFor(tx model.Tx, d *model.Deployment) error {
	history, err := tx.Deployments(d.Environment)
	if err != nil {
		return err
	}
	var size int64
	for _, app := range d.Applications {
		if app.ReleaseID == "" {
			continue
		}
		r, err := tx.Release(app.ReleaseID)
		if err != nil {
			return err
		}
		size += r.SizeBytes
	}
	agents := map[string]int64{}
	for _, v := range s.fleet.Connected(d.Environment) {
		agents[v.Name] = 0
		if !holdsAll(d, v) {
			agents[v.Name] = size
		}
	}
	var shadow time.Duration
	if raw, err := tx.SQLPlan(d.ID); err == nil {
		if plan, err := decodePlan(d.ID, raw); err == nil && plan.Shadow != nil {
			shadow = plan.Shadow.Duration
		}
	}
	d.Prediction = predict(predictInput{d: d, agents: agents, history: history, shadowSQL: shadow, now: s.clock()})
	d.PredictedStage2 = d.Prediction.Total
	return nil
}

// recordStepTime records, from a final answer r to an arm or commit of
// stage 2, how long that agent took since the step began.
func recordStepTime(d *model.Deployment, r fleet.Report, kind fleet.CommandKind, now time.Time) {
	if d.State != model.Activating || d.RollingBack || !r.Outcome.Final() || d.StepTime.IsZero() {
		return
	}
	i := slices.IndexFunc(d.Agents, func(a model.DeploymentAgent) bool { return a.Name == r.Agent })
	if i < 0 {
		return
	}
	switch kind {
	case fleet.Arm:
		d.Agents[i].ArmDuration = now.Sub(d.StepTime)
	case fleet.Commit:
		d.Agents[i].CommitDuration = now.Sub(d.StepTime)
	}
}
