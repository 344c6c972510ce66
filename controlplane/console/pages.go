package console

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/cutover-dev/cutover/controlplane/audit"
	"github.com/cutover-dev/cutover/controlplane/auth"
	"github.com/cutover-dev/cutover/controlplane/deployment"
	"github.com/cutover-dev/cutover/controlplane/fleet"
	"github.com/cutover-dev/cutover/controlplane/migrate"
	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/pkg/errkind"
)

// readable says whether s may read env: the pages that list across
// environments show only those.
func readable(s auth.Subject, env string) bool {
	return auth.Allowed(s, auth.Read, auth.Target{Environment: env}) == nil
}

func (c *Console) home(w http.ResponseWriter, r *http.Request, rq *request) error {
	http.Redirect(w, r, "/deployments", http.StatusSeeOther)
	return nil
}

// --- environments ---

type envView struct {
	Env         *model.Environment
	DSN         string
	Windows     deployment.WindowStatus
	ClosesIn    string
	NextIn      string
	PreparedTTL string
	Deployed    []deployedView
	Agents      []fleet.AgentView
	Connected   int
	HasWindows  bool
	// CanEdit: the subject may change the environment (admin).
	CanEdit bool
}

type deployedView struct {
	App string
	model.DeployedVersion
}

func (c *Console) environmentsPage(w http.ResponseWriter, r *http.Request, rq *request) error {
	envs, err := c.cat.Environments(r.Context())
	if err != nil {
		return err
	}
	now := c.clock()
	var views []envView
	for _, e := range envs {
		if !readable(rq.subject, e.Name) {
			continue
		}
		v := envView{Env: e, DSN: migrate.RedactDSN(e.Database.DSN), Windows: deployment.Windows(e, now),
			PreparedTTL: deployment.FormatTTL(deployment.PreparedTTL(e)), HasWindows: len(e.Windows) > 0, CanEdit: c.may(rq.subject, "UpdateEnvironment", e.Name)}
		if !v.Windows.Closes.IsZero() {
			v.ClosesIn = formatDuration(v.Windows.Closes.Sub(now))
		}
		if !v.Windows.NextOpen.IsZero() {
			v.NextIn = formatDuration(v.Windows.NextOpen.Sub(now))
		}
		for app, dv := range e.DeployedVersions {
			v.Deployed = append(v.Deployed, deployedView{App: app, DeployedVersion: dv})
		}
		slices.SortFunc(v.Deployed, func(a, b deployedView) int { return strings.Compare(a.App, b.App) })
		if v.Agents, err = c.fleet.Agents(e.Name); err != nil {
			return err
		}
		for _, a := range v.Agents {
			if a.Connected {
				v.Connected++
			}
		}
		views = append(views, v)
	}
	c.render(w, rq, http.StatusOK, "environments", map[string]any{"Environments": views})
	return nil
}

// --- deployments list ---

type listRow struct {
	D         *model.Deployment
	Creator   string
	Age       string
	ExpiresIn string
	Versions  string
}

func creator(d *model.Deployment) string {
	for _, t := range d.History {
		if t.State == model.Planned {
			return t.Actor
		}
	}
	return ""
}

// expiresIn is how long a PREPARED deployment has until it expires; ""
// for the others.
func expiresIn(d *model.Deployment, now time.Time) string {
	if d.State != model.Prepared || d.ExpireTime.IsZero() {
		return ""
	}
	return formatDuration(d.ExpireTime.Sub(now))
}

// spread is a deployment's activation spread, once it has one.
func spread(d *model.Deployment) string {
	if d.State != model.Deployed && d.ActivationSpread <= 0 {
		return ""
	}
	return formatDuration(d.ActivationSpread)
}

func versions(d *model.Deployment) string {
	var parts []string
	for _, a := range d.Applications {
		parts = append(parts, strings.TrimSpace(a.Name+" "+a.VersionLabel))
	}
	return strings.Join(parts, ", ")
}

func (c *Console) deploymentsPage(w http.ResponseWriter, r *http.Request, rq *request) error {
	ds, err := c.deps.List(r.Context(), rq.target.env)
	if err != nil {
		return err
	}
	now := c.clock()
	var rows []listRow
	for _, d := range ds {
		if !readable(rq.subject, d.Environment) {
			continue
		}
		rows = append(rows, listRow{D: d, Creator: creator(d), Age: formatDuration(now.Sub(d.CreateTime)), Versions: versions(d),
			ExpiresIn: expiresIn(d, now)})
	}
	// The form to plan a deployment: the environments the subject may
	// deploy to, and the applications.
	var deployable []string
	envs, err := c.cat.Environments(r.Context())
	if err != nil {
		return err
	}
	for _, e := range envs {
		if c.may(rq.subject, "CreateDeployment", e.Name) {
			deployable = append(deployable, e.Name)
		}
	}
	var apps []string
	if len(deployable) > 0 {
		as, err := c.cat.Applications(r.Context())
		if err != nil {
			return err
		}
		for _, a := range as {
			apps = append(apps, a.Name)
		}
	}
	c.render(w, rq, http.StatusOK, "deployments", map[string]any{"Rows": rows, "Environment": rq.target.env,
		"Deployable": deployable, "Applications": apps})
	return nil
}

// --- one deployment ---

type agentRow struct {
	A       model.DeploymentAgent
	Percent int
}

type step struct {
	Name     string
	Duration string
}

type buttons struct {
	Prepare, Start, Continue, Abort, Approve bool
	// ContinueBlocked says why Continue is disabled ("" when it is not).
	ContinueBlocked string
	// Force: Continue outside the windows, with a reason.
	Force bool
	// Schedule: continue at the next window opening; CancelSchedule
	// undoes it.
	Schedule, CancelSchedule bool
	Extend, Rollback         bool
}

// Any says whether any button is shown.
func (b buttons) Any() bool {
	return b.Prepare || b.Start || b.Continue || b.Abort || b.Approve || b.Force || b.Schedule || b.CancelSchedule || b.Extend || b.Rollback
}

// extendChoices are the durations the Extend button offers.
var extendChoices = []string{"1h", "6h", "24h", "48h", "96h"}

// phaseScript is a down script with the phase it undoes.
type phaseScript struct {
	Undoes string
	Script string
}

// phasesOf returns what the page shows of a plan beside the expand
// script: the contract phase, the down scripts and the irreversible
// migrations.
func phasesOf(p *migrate.Plan) (contract *migrate.Plan, downs []phaseScript, irreversible []string) {
	for _, ph := range []*migrate.Plan{p, p.Contract} {
		if ph.Empty() {
			continue
		}
		if ph.Down != nil && strings.TrimSpace(ph.Down.Script) != "" {
			downs = append(downs, phaseScript{Undoes: ph.PhaseName(), Script: ph.Down.Script})
		}
		for _, i := range ph.Irreversible {
			irreversible = append(irreversible, i.String())
		}
	}
	if !p.Contract.Empty() {
		contract = p.Contract
	}
	return contract, downs, irreversible
}

type deploymentView struct {
	D         *model.Deployment
	Env       *model.Environment
	Creator   string
	Versions  string
	Age       string
	ExpiresIn string
	Agents    []agentRow
	Stage1    []step
	Stage2    []step
	Script    string
	Pending   []migrate.Pending
	// Contract is the contract phase (run after every front-end swapped
	// and passed its checks); Downs are the down scripts beside the
	// phases, and Irreversible what no down script undoes.
	Contract     *migrate.Plan
	Downs        []phaseScript
	Irreversible []string
	PlanNote     string
	Buttons   buttons
	Settled   bool
	Spread    string
	// ExtendBy are the durations the Extend button offers.
	ExtendBy []string
	// RollbackSchema, with the Rollback button, is how many migrations
	// the deployment applied: the form offers to roll the database back
	// too (deployment.SchemaChanges).
	RollbackSchema int
	// RollbackIrreversible names those of them that cannot be undone: the
	// form offers force, which leaves them applied.
	RollbackIrreversible []string
}

func percent(done, total int64) int {
	if total <= 0 {
		return 0
	}
	p := int(done * 100 / total)
	return min(max(p, 0), 100)
}

// agentPercent is how far an agent is in staging: 100 once it holds the
// release (staged, or further), whatever it had to receive.
func agentPercent(a model.DeploymentAgent) int {
	switch a.State {
	case model.AgentPending:
		return 0
	case model.AgentStaging, model.AgentFailed:
		return percent(a.TransferredBytes, a.ReleaseBytes)
	}
	return 100
}

func span(from, to time.Time) string {
	if from.IsZero() || to.IsZero() {
		return ""
	}
	return formatDuration(to.Sub(from))
}

func nonzero(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return formatDuration(d)
}

func (c *Console) deploymentPage(w http.ResponseWriter, r *http.Request, rq *request) error {
	ctx := r.Context()
	d, err := c.deps.Get(ctx, rq.target.deployment)
	if err != nil {
		return err
	}
	env, err := c.cat.Environment(ctx, d.Environment)
	if err != nil {
		return err
	}
	now := c.clock()
	v := deploymentView{D: d, Env: env, Creator: creator(d), Versions: versions(d), Age: formatDuration(now.Sub(d.CreateTime)),
		Settled: deployment.Settled(d), ExtendBy: extendChoices, ExpiresIn: expiresIn(d, now), Spread: spread(d)}
	for _, a := range d.Agents {
		v.Agents = append(v.Agents, agentRow{A: a, Percent: agentPercent(a)})
	}
	v.Stage1 = []step{{"Build", nonzero(d.BuildDuration)}, {"Transfer", nonzero(d.TransferDuration)},
		{"Stage 1 in all", span(d.PrepareTime, d.PreparedTime)}}
	v.Stage2 = []step{{"Arm", nonzero(d.ArmDuration)}, {"Hooks", nonzero(d.HooksDuration)}, {"SQL", nonzero(d.SQLDuration)},
		{"Swap", nonzero(d.SwapDuration)}}
	if !d.ActivateTime.IsZero() {
		v.Stage2 = append(v.Stage2, step{"Stage 2 in all", span(d.ActivateTime, d.FinishTime)})
	}
	v.Buttons = c.buttonsFor(rq.subject, d, env, now)
	if p, err := c.deps.SQLPlan(ctx, d.ID); err == nil {
		v.Script, v.Pending = p.Script, p.Pending
		v.Contract, v.Downs, v.Irreversible = phasesOf(p)
		if strings.TrimSpace(p.Script) == "" && v.Contract.Empty() {
			v.PlanNote = "Stage 2 runs no SQL: the database has every migration."
		}
		if v.Buttons.Rollback {
			var irreversible []migrate.Irreversible
			v.RollbackSchema, irreversible = deployment.SchemaChanges(d, p)
			for _, i := range irreversible {
				v.RollbackIrreversible = append(v.RollbackIrreversible, i.String())
			}
		}
	} else if errors.Is(err, errkind.NotFound) || errors.Is(err, errkind.FailedPrecondition) {
		v.PlanNote = "The SQL script is generated by Prepare."
	} else {
		return err
	}
	c.render(w, rq, http.StatusOK, "deployment", v)
	return nil
}

// buttonsFor decides which buttons a page shows: those the subject's
// role allows (the routes' own check) and the deployment's state permits
// (the domain's Can… predicates). The server checks both again when a
// button is pressed.
func (c *Console) buttonsFor(s auth.Subject, d *model.Deployment, env *model.Environment, now time.Time) buttons {
	var b buttons
	deploy := func(name string) bool { return c.may(s, name, d.Environment) }
	b.Prepare = deploy("PrepareDeployment") && deployment.CanPrepare(d, env) == nil
	// A two-stage environment offers Prepare, a single-stage one Start.
	b.Start = !env.TwoStage && deploy("StartDeployment") && deployment.CanStart(d) == nil
	if deploy("ContinueDeployment") && deployment.CanContinue(d, now) == nil {
		// Continue is shown, disabled with the reason, while a window or
		// the approval is missing.
		b.Continue = true
		unapproved := deployment.NeedsApproval(d, env)
		w := deployment.Windows(env, now)
		if !w.Open {
			b.ContinueBlocked = fmt.Sprintf("No deployment window of %s is open now. The next window opens in %s: %s.",
				env.Name, formatDuration(w.NextOpen.Sub(now)), w.Next)
			// Force overrides the window, never the approval.
			b.Force = !unapproved
			b.Schedule = !unapproved && d.ScheduledTime.IsZero()
		} else if unapproved {
			b.ContinueBlocked = "This environment requires an approval before stage 2; an approver must approve it first."
		}
	}
	b.CancelSchedule = deploy("CancelScheduledContinue") && deployment.CanCancelSchedule(d) == nil
	b.Extend = deploy("ExtendDeployment") && deployment.CanExtend(d, now) == nil
	b.Rollback = deploy("RollbackDeployment") && deployment.CanRollback(d, env) == nil
	b.Abort = deploy("AbortDeployment") && deployment.CanAbort(d) == nil
	// Approve is offered where the environment requires it.
	b.Approve = env.RequireApproval && c.may(s, "ApproveDeployment", d.Environment) && deployment.CanApprove(d, s.Name) == nil
	return b
}

// --- front-ends ---

type frontendRow struct {
	fleet.AgentView
	CertExpires time.Time
	CertIn      string
	Revoked     time.Time
	LastSeenAgo string
}

func (c *Console) frontendsPage(w http.ResponseWriter, r *http.Request, rq *request) error {
	as, err := c.fleet.Agents(rq.target.env)
	if err != nil {
		return err
	}
	enrolled, err := c.auth.Enrollments(r.Context())
	if err != nil {
		return err
	}
	now := c.clock()
	var rows []frontendRow
	seen := map[string]bool{}
	add := func(a fleet.AgentView) {
		if !readable(rq.subject, a.Environment) {
			return
		}
		row := frontendRow{AgentView: a}
		if e := enrolled[a.Name]; e != nil && e.Environment == a.Environment {
			if n := len(e.Certs); n > 0 {
				row.CertExpires = e.Certs[n-1].NotAfter
				row.CertIn = formatDuration(row.CertExpires.Sub(now))
			}
			row.Revoked = e.RevokeTime
		}
		if !a.LastSeen.IsZero() {
			row.LastSeenAgo = formatDuration(now.Sub(a.LastSeen))
		}
		seen[a.Name] = true
		rows = append(rows, row)
	}
	for _, a := range as {
		add(a)
	}
	for name, e := range enrolled { // enrolled, never connected
		if !seen[name] && (rq.target.env == "" || e.Environment == rq.target.env) {
			add(fleet.AgentView{Agent: model.Agent{Name: name, Environment: e.Environment}})
		}
	}
	slices.SortFunc(rows, func(a, b frontendRow) int {
		return strings.Compare(a.Environment+"/"+a.Name, b.Environment+"/"+b.Name)
	})
	c.render(w, rq, http.StatusOK, "frontends", map[string]any{"Rows": rows, "Environment": rq.target.env})
	return nil
}

// --- audit log ---

// auditLimit is how many entries the audit page shows, newest first.
const auditLimit = 500

func (c *Console) auditPage(w http.ResponseWriter, r *http.Request, rq *request) error {
	q := r.URL.Query()
	f := audit.Filter{Environment: rq.target.env, Deployment: strings.TrimSpace(q.Get("deployment")), Subject: strings.TrimSpace(q.Get("subject"))}
	es, err := c.audit.List(r.Context(), f)
	if err != nil {
		return err
	}
	total := len(es)
	slices.Reverse(es)
	if len(es) > auditLimit {
		es = es[:auditLimit]
	}
	verified, verifyErr := "", ""
	if err := c.audit.Verify(r.Context()); err != nil {
		verifyErr = err.Error()
	} else {
		verified = "The whole chain verifies: every entry's hash matches its content and the entry before it."
	}
	c.render(w, rq, http.StatusOK, "audit", map[string]any{"Entries": es, "Total": total, "Shown": len(es),
		"Filter": f, "Verified": verified, "VerifyError": verifyErr})
	return nil
}
