package migrate

import (
	"fmt"
	"slices"
	"strings"
)

// The phases of a deployment's SQL, and their down plans. Generate returns
// the expand plan (Phase ""): the NNNN_name.up.sql files, run in stage 2
// before the swap, which the running version must tolerate. Its Contract
// holds the NNNN_name.contract.sql files, run once every front-end swapped
// and passed its checks; its Basis is the bookkeeping rows once the expand
// phase ran. Each phase's Down undoes it: the down files of its reversible
// migrations, newest first, grouped as Generate groups (consecutive
// transactional files in one transaction, a no-transaction one alone),
// each followed by the DELETE of its bookkeeping row; its Basis is the
// rows of the deployment's applications once the phase ran (Scope), so
// that migrations other deployments ran on other applications since do not
// stop it. Execute and Resume run any of these plans.
const (
	// PhaseContract is the contract phase.
	PhaseContract = "contract"
	// PhaseDownExpand undoes the expand phase.
	PhaseDownExpand = "down-expand"
	// PhaseDownContract undoes the contract phase.
	PhaseDownContract = "down-contract"
)

// Irreversible is a pending migration that no down plan undoes.
type Irreversible struct {
	Pending
	// Reason says why: it has no down file, or is marked irreversible.
	Reason string `json:"reason"`
}

// String names the migration and why it is irreversible.
func (i Irreversible) String() string {
	return fmt.Sprintf("application %q migration %s (%s)", i.Application, i.Name, i.Reason)
}

// PhaseName is the plan's phase in words: "expand", "contract", "down of
// expand", "down of contract".
func (p *Plan) PhaseName() string {
	switch p.Phase {
	case "":
		return "expand"
	case PhaseDownExpand:
		return "down of expand"
	case PhaseDownContract:
		return "down of contract"
	}
	return p.Phase
}

// isDown says whether p is a down plan.
func (p *Plan) isDown() bool { return strings.HasPrefix(p.Phase, "down-") }

// phaseHeader is the first line of p's script (the expand phase's is the
// line scripts had before phases existed).
func phaseHeader(p *Plan) string {
	switch {
	case p.Phase == "":
		return fmt.Sprintf("-- cutover migration script for deployment %s (%s): %d migration(s) in %d group(s).\n",
			p.DeploymentID, p.Driver, len(p.Pending), len(p.Groups))
	case p.Phase == PhaseContract:
		return fmt.Sprintf("-- cutover contract script for deployment %s (%s): %d migration(s) in %d group(s),\n-- run once every front-end runs the new release and passed its health check and validate hooks.\n",
			p.DeploymentID, p.Driver, len(p.Pending), len(p.Groups))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "-- cutover down script for deployment %s (%s): undoes %d migration(s) of the %s phase, newest first, in %d group(s);\n-- each down file is followed by the DELETE of its bookkeeping row.\n",
		p.DeploymentID, p.Driver, len(p.Pending), strings.TrimPrefix(p.Phase, "down-"), len(p.Groups))
	fmt.Fprintf(&b, "-- The digest below covers the bookkeeping rows of %s only.\n", strings.Join(p.Scope, ", "))
	for _, i := range p.Irreversible {
		fmt.Fprintf(&b, "-- Not undone, stays applied: %s.\n", i)
	}
	return b.String()
}

// downPlan returns the plan that undoes p's reversible migrations (the
// files of apps), and lists the others in p.Irreversible; nil when none
// can be undone.
func downPlan(p *Plan, apps []AppFiles) *Plan {
	files := map[appVersion]File{}
	var scope []string
	for _, a := range apps {
		scope = append(scope, a.Application)
		for _, f := range a.Files {
			files[appVersion{a.Application, f.Version}] = f
		}
	}
	slices.Sort(scope)
	after := rowsThrough(p, len(p.Groups))
	phase := PhaseDownExpand
	if p.Phase == PhaseContract {
		phase = PhaseDownContract
	}
	d := &Plan{DeploymentID: p.DeploymentID, Driver: p.Driver, Phase: phase, Scope: scope, Applied: after}
	d.Basis = d.digestOf(after)
	var cur *Group
	for i := len(p.Pending) - 1; i >= 0; i-- {
		pd := p.Pending[i]
		f := files[appVersion{pd.Application, pd.Version}]
		if !f.Reversible() {
			reason := "no down file " + stem(f.Name) + ".down.sql"
			if f.Irreversible {
				reason = "marked " + IrreversibleMarker
			}
			p.Irreversible = append(p.Irreversible, Irreversible{Pending: pd, Reason: reason})
			continue
		}
		dp := Pending{Application: pd.Application, Version: pd.Version, Name: f.Down.Name, Checksum: f.Down.Checksum, NoTransaction: f.Down.NoTransaction}
		d.Pending = append(d.Pending, dp)
		cur = d.addStep(cur, Step{Pending: dp, SQL: f.Down.SQL, Record: deleteSQL(pd, p.DeploymentID)})
	}
	if d.Empty() {
		return nil
	}
	d.Irreversible = p.Irreversible
	d.Script = render(d)
	return d
}

// WithKept returns a copy of down plan p whose basis also holds the
// bookkeeping rows of kept: later migrations of the same deployment that
// stay applied (the irreversible contract migrations a forced rollback
// leaves). Its script is rendered again: only its digest line differs.
func (p *Plan) WithKept(kept []Pending) *Plan {
	if len(kept) == 0 {
		return p
	}
	q := *p
	q.Applied = slices.Clone(p.Applied)
	for _, k := range kept {
		q.Applied = append(q.Applied, Applied{Application: k.Application, Version: k.Version, Name: k.Name,
			Checksum: k.Checksum, DeploymentID: p.DeploymentID})
	}
	sortApplied(q.Applied)
	q.Basis = q.digestOf(q.Applied)
	q.Script = render(&q)
	return &q
}

// deleteSQL is the DELETE of the bookkeeping row of p, applied by
// deployment deploymentID.
func deleteSQL(p Pending, deploymentID string) string {
	return fmt.Sprintf("DELETE FROM %s WHERE application = %s AND version = %d AND deployment_id = %s",
		table, quote(p.Application), p.Version, quote(deploymentID))
}

// rowsThrough returns the bookkeeping rows the database holds once the
// first k groups of plan ran, sorted as readRows sorts them: its basis
// rows plus theirs, or, for a down plan, without theirs.
func rowsThrough(plan *Plan, k int) []Applied {
	rows := slices.Clone(plan.Applied)
	for _, g := range plan.Groups[:k] {
		for _, s := range g.Steps {
			if plan.isDown() {
				rows = slices.DeleteFunc(rows, func(a Applied) bool {
					return a.Application == s.Application && a.Version == s.Version
				})
				continue
			}
			rows = append(rows, Applied{Application: s.Application, Version: s.Version, Name: s.Name,
				Checksum: s.Checksum, DeploymentID: plan.DeploymentID})
		}
	}
	sortApplied(rows)
	return rows
}

// digestOf is the digest of rows that p's Basis is compared with: of the
// rows of p.Scope's applications when p has a scope, of all otherwise.
func (p *Plan) digestOf(rows []Applied) string {
	return digest(p.scoped(rows))
}

// scoped returns the rows of p.Scope's applications (all without a scope).
func (p *Plan) scoped(rows []Applied) []Applied {
	if len(p.Scope) == 0 {
		return rows
	}
	var out []Applied
	for _, r := range rows {
		if slices.Contains(p.Scope, r.Application) {
			out = append(out, r)
		}
	}
	return out
}
