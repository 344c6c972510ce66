package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// appVersions renders a deployment's applications as "hello=v2 billing=7".
func appVersions(d *cutoverv1.Deployment) string {
	parts := make([]string, 0, len(d.GetApplications()))
	for _, a := range d.GetApplications() {
		parts = append(parts, a.GetName()+"="+a.GetVersionLabel())
	}
	return strings.Join(parts, " ")
}

func formatDeployment(w io.Writer, d *cutoverv1.Deployment) {
	t := newTable(w)
	row(t, "ID", d.GetId())
	row(t, "ENVIRONMENT", d.GetEnvironment())
	state := stateName(d.GetState())
	if d.GetSingleStage() {
		state += " (single stage)"
	}
	row(t, "STATE", state)
	field(t, "ERROR", d.GetError())
	field(t, "CREATED", formatTime(d.GetCreateTime()))
	field(t, "PREPARE-STARTED", formatTime(d.GetPrepareTime()))
	field(t, "PREPARED", formatTime(d.GetPreparedTime()))
	if d.GetState() == cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED || d.GetState() == cutoverv1.DeploymentState_DEPLOYMENT_STATE_EXPIRED {
		field(t, "EXPIRES", formatTime(d.GetExpireTime()))
	}
	field(t, "SCHEDULED", formatTime(d.GetScheduledTime()))
	field(t, "PREDICTED-STAGE2", formatDuration(d.GetPredictedStage2Duration()))
	if p := d.GetStage2Prediction(); p != nil {
		var parts []string
		for _, part := range p.GetParts() {
			parts = append(parts, fmt.Sprintf("%s %s (%s)", part.GetName(), formatDuration(part.GetDuration()), part.GetBasis()))
		}
		row(t, "PREDICTION", formatDuration(p.GetTotal())+" = "+strings.Join(parts, " + "))
	}
	if a := d.GetApproval(); a != nil {
		approved := a.GetActor() + " at " + formatTime(a.GetTime())
		if a.GetComment() != "" {
			approved += ": " + a.GetComment()
		}
		row(t, "APPROVED", approved)
	}
	field(t, "ACTIVATE-STARTED", formatTime(d.GetActivateTime()))
	field(t, "STAGE2-DEADLINES", formatDeadlines(d.GetStage2Deadlines()))
	if d.GetStep() != "" {
		step := d.GetStep()
		if d.GetStepDeadline() != nil {
			step += ", ends by " + formatTime(d.GetStepDeadline())
		}
		row(t, "STEP", step)
	}
	field(t, "FINISHED", formatTime(d.GetFinishTime()))
	field(t, "BUILD", formatDuration(d.GetBuildDuration()))
	field(t, "TRANSFER", formatDuration(d.GetTransferDuration()))
	field(t, "ARM", formatDuration(d.GetArmDuration()))
	field(t, "HOOKS", formatDuration(d.GetHooksDuration()))
	field(t, "SQL", formatDuration(d.GetSqlDuration()))
	field(t, "SWAP", formatDuration(d.GetSwapDuration()))
	field(t, "ACTIVATION-SPREAD", formatDuration(d.GetActivationSpread()))
	_ = t.Flush()

	fmt.Fprintln(w)
	t = newTable(w)
	row(t, "APPLICATION", "VERSION", "RELEASE", "PREVIOUS")
	for _, a := range d.GetApplications() {
		row(t, a.GetName(), a.GetVersionLabel(), orDash(shortID(a.GetReleaseId())), orDash(shortID(a.GetPreviousReleaseId())))
	}
	_ = t.Flush()

	if len(d.GetAgents()) > 0 {
		fmt.Fprintln(w)
		t = newTable(w)
		row(t, "AGENT", "STATE", "TRANSFERRED", "RELEASE-SIZE", "SWAPPED", "ERROR")
		for _, a := range d.GetAgents() {
			swapped := "-"
			if a.GetSwapTime() != nil {
				swapped = a.GetSwapTime().AsTime().Local().Format("15:04:05.000")
			}
			state := agentStateName(a.GetState())
			if a.GetUnanswered() != "" {
				state += " (unanswered " + a.GetUnanswered() + ")"
			}
			row(t, a.GetName(), state, formatBytes(a.GetTransferredBytes()),
				formatBytes(a.GetReleaseBytes()), swapped, orDash(a.GetError()))
		}
		_ = t.Flush()
	}

	formatHooks(w, d)
	formatPackage(w, d.GetId(), d.GetPackage())

	if len(d.GetHistory()) > 0 {
		fmt.Fprintln(w)
		t = newTable(w)
		row(t, "TIME", "STATE", "ACTOR", "MESSAGE")
		for _, h := range d.GetHistory() {
			row(t, formatTime(h.GetTime()), stateName(h.GetState()), orDash(h.GetActor()), orDash(h.GetMessage()))
		}
		_ = t.Flush()
	}
}

// formatHooks prints, per agent, the hooks it ran: exit status, duration
// and the tail of the output (its last lines).
func formatHooks(w io.Writer, d *cutoverv1.Deployment) {
	var any bool
	for _, a := range d.GetAgents() {
		any = any || len(a.GetHooks()) > 0
	}
	if !any {
		return
	}
	fmt.Fprintln(w)
	t := newTable(w)
	row(t, "AGENT", "HOOK", "APPLICATION", "COMMAND", "EXIT", "TOOK", "OUTPUT (TAIL)")
	for _, a := range d.GetAgents() {
		for _, h := range a.GetHooks() {
			row(t, a.GetName(), hookKindName(h.GetKind()), h.GetApplication(), h.GetCommand(), fmt.Sprint(h.GetExitCode()),
				formatDuration(h.GetDuration()), orDash(lastLines(h.GetOutput(), 3)))
		}
	}
	_ = t.Flush()
}

func formatPackage(w io.Writer, id string, p *cutoverv1.DeploymentPackage) {
	if p == nil {
		return
	}
	fmt.Fprintln(w)
	t := newTable(w)
	switch {
	case p.GetError() != "":
		row(t, "PACKAGE", p.GetApplication()+": failed: "+p.GetError())
	case !p.GetRan() && len(p.GetChanged()) > 0:
		row(t, "PACKAGE", p.GetApplication()+": running (changed: "+strings.Join(p.GetChanged(), ", ")+")")
	case !p.GetRan():
		row(t, "PACKAGE", p.GetApplication()+": not run, no file matching when_changed differs from the previous release")
	default:
		row(t, "PACKAGE", fmt.Sprintf("%s: %s in %s (changed: %s); download with cutoverctl deploy package %s -o FILE",
			p.GetApplication(), formatBytes(p.GetSizeBytes()), formatDuration(p.GetDuration()), strings.Join(p.GetChanged(), ", "), id))
	}
	_ = t.Flush()
}

func hookKindName(k cutoverv1.HookKind) string {
	return strings.ToLower(strings.TrimPrefix(k.String(), "HOOK_KIND_"))
}

// lastLines returns the last n lines of s, joined with " | ".
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

func formatDeployments(w io.Writer, resp *cutoverv1.ListDeploymentsResponse) {
	t := newTable(w)
	row(t, "ID", "ENVIRONMENT", "STATE", "APPLICATIONS", "CREATED", "FINISHED")
	for _, d := range resp.GetDeployments() {
		row(t, d.GetId(), d.GetEnvironment(), stateName(d.GetState()), appVersions(d),
			formatTime(d.GetCreateTime()), orDash(formatTime(d.GetFinishTime())))
	}
	_ = t.Flush()
}

// formatDeadlines says stage 2 deadlines: "arm 10m0s, hooks 10m0s,
// commit 2m0s"; "" when unset.
func formatDeadlines(dl *cutoverv1.Stage2Deadlines) string {
	if dl == nil {
		return ""
	}
	return fmt.Sprintf("arm %s, hooks %s, commit %s", formatDuration(dl.GetArm()), formatDuration(dl.GetHooks()), formatDuration(dl.GetCommit()))
}

func formatPlan(w io.Writer, p *cutoverv1.DeploymentPlan) {
	if dl := formatDeadlines(p.GetStage2Deadlines()); dl != "" {
		fmt.Fprintf(w, "-- stage 2 deadlines: %s\n", dl)
	}
	if len(p.GetPendingMigrations()) == 0 && strings.TrimSpace(p.GetScript()) == "" && p.GetContractScript() == "" {
		fmt.Fprintf(w, "-- deployment %s runs no SQL\n", p.GetDeploymentId())
		return
	}
	for _, m := range p.GetPendingMigrations() {
		fmt.Fprintf(w, "-- %s %04d %s sha256:%s\n", m.GetApplication(), m.GetVersion(), m.GetName(), shortID(m.GetChecksum()))
	}
	if p.GetShadow() != "" {
		fmt.Fprintf(w, "-- checked at prepare on a shadow database: %s (built in %s); the script took %s there:\n",
			p.GetShadow(), shortDuration(p.GetShadowSetupDuration()), shortDuration(p.GetShadowDuration()))
		for i, g := range p.GetGroups() {
			kind := "transaction"
			if g.GetNoTransaction() {
				kind = "no transaction"
			}
			fmt.Fprintf(w, "--   group %d (%s: %s): %s\n", i+1, kind, strings.Join(g.GetMigrations(), ", "), shortDuration(g.GetShadowDuration()))
		}
		fmt.Fprintln(w, "--   (times on a shadow without rows: statements that scan or change rows take longer on the environment's database)")
	} else if len(p.GetPendingMigrations()) > 0 {
		fmt.Fprintln(w, "-- not checked on a shadow database")
	}
	if u := p.GetUnproven(); len(u) > 0 {
		fmt.Fprintf(w, "-- NOT PROVEN on a schema-only shadow: %d statement(s) whose outcome depends on the rows:\n", len(u))
		for _, s := range u {
			fmt.Fprintf(w, "--   %s %s statement %d (line %d) %s: %s\n--     %s\n", s.GetApplication(), s.GetFile(), s.GetStatement(), s.GetLine(), s.GetKind(), s.GetReason(), s.GetSql())
		}
	}
	fmt.Fprintln(w, "-- ===== phase 1: expand, run in stage 2 before the swap")
	fmt.Fprint(w, p.GetScript())
	if !strings.HasSuffix(p.GetScript(), "\n") {
		fmt.Fprintln(w)
	}
	formatPhases(w, p)
}

// formatPhases writes the contract phase of p, which runs, and its down
// scripts and irreversible migrations, which do not: commented out, so
// that the output stays a script that continue would run.
func formatPhases(w io.Writer, p *cutoverv1.DeploymentPlan) {
	if c := p.GetContractScript(); c != "" {
		fmt.Fprintln(w, "\n-- ===== phase 2: contract, run in stage 2 once every front-end runs the new releases and passed its checks")
		for _, m := range p.GetContractMigrations() {
			fmt.Fprintf(w, "-- %s %04d %s sha256:%s\n", m.GetApplication(), m.GetVersion(), m.GetName(), shortID(m.GetChecksum()))
		}
		fmt.Fprint(w, c)
		if !strings.HasSuffix(c, "\n") {
			fmt.Fprintln(w)
		}
	}
	for _, i := range p.GetIrreversible() {
		fmt.Fprintf(w, "-- IRREVERSIBLE (%s): %s %s: %s\n", i.GetPhase(), i.GetApplication(), i.GetName(), i.GetReason())
	}
	for _, d := range []struct{ what, script string }{
		{"down of contract (rollback --with-database, before the swap back)", p.GetContractDownScript()},
		{"down of expand (stage 2's rollback, and rollback --with-database after the swap back)", p.GetDownScript()},
	} {
		if d.script == "" {
			continue
		}
		fmt.Fprintf(w, "\n-- ===== %s; not run by continue, shown commented out:\n", d.what)
		for _, line := range strings.Split(strings.TrimRight(d.script, "\n"), "\n") {
			fmt.Fprintln(w, "-- | "+line)
		}
	}
}

// summary says in one line where deployment d ended up, with the timings
// that matter there and, when PREPARED, the command that continues it.
func summary(d *cutoverv1.Deployment) string {
	s := fmt.Sprintf("deployment %s is %s", d.GetId(), stateName(d.GetState()))
	var facts []string
	add := func(name string, v *durationpb.Duration) {
		if v != nil {
			facts = append(facts, name+" "+formatDuration(v))
		}
	}
	switch d.GetState() {
	case cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED:
		add("build", d.GetBuildDuration())
		add("transfer", d.GetTransferDuration())
	case cutoverv1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED:
		if d.GetActivateTime() != nil && d.GetFinishTime() != nil {
			stage2 := d.GetFinishTime().AsTime().Sub(d.GetActivateTime().AsTime())
			facts = append(facts, "stage 2 took "+stage2.Round(time.Millisecond).String())
		}
		if d.GetSqlDuration().AsDuration() > 0 {
			add("SQL", d.GetSqlDuration())
		}
		add("swap", d.GetSwapDuration())
		add("activation spread", d.GetActivationSpread())
	}
	if len(facts) > 0 {
		s += " (" + strings.Join(facts, ", ") + ")"
	}
	if d.GetError() != "" {
		s += ": " + d.GetError()
	}
	if d.GetState() == cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED {
		if d.GetExpireTime() != nil {
			s += "; expires " + formatTime(d.GetExpireTime())
		}
		if d.GetScheduledTime() != nil {
			s += "; stage 2 scheduled for " + formatTime(d.GetScheduledTime())
		} else {
			s += "; continue it with: cutoverctl deploy continue " + d.GetId()
		}
	}
	return s
}
