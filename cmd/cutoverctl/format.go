package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// shortIDLen is how many hex digits of a release id tables show.
const shortIDLen = 12

// newTable returns a tabwriter for aligned columns; call Flush when done.
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
}

// row writes tab-separated cells and a newline.
func row(w io.Writer, cells ...string) {
	fmt.Fprintln(w, strings.Join(cells, "\t"))
}

// field writes "KEY  value" when value is not empty.
func field(w io.Writer, key, value string) {
	if value != "" {
		row(w, key, value)
	}
}

// stateName is a deployment state without its enum prefix ("PREPARED").
func stateName(s cutoverv1.DeploymentState) string {
	return strings.TrimPrefix(s.String(), "DEPLOYMENT_STATE_")
}

// agentStateName is an agent's deployment state without its enum prefix.
func agentStateName(s cutoverv1.AgentDeploymentState) string {
	return strings.TrimPrefix(s.String(), "AGENT_DEPLOYMENT_STATE_")
}

// shortID shortens a release id for tables.
func shortID(id string) string {
	if len(id) > shortIDLen {
		return id[:shortIDLen]
	}
	return id
}

// formatBytes renders n in B, KiB, MiB or GiB.
func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	f := float64(n)
	for _, u := range []string{"KiB", "MiB", "GiB"} {
		f /= unit
		if f < unit || u == "GiB" {
			return fmt.Sprintf("%.1f %s", f, u)
		}
	}
	return "" // unreachable
}

// formatTime renders a timestamp in local time, or "" when unset.
func formatTime(t *timestamppb.Timestamp) string {
	if t == nil {
		return ""
	}
	return t.AsTime().Local().Format("2006-01-02 15:04:05")
}

// formatUTC renders a timestamp in UTC with its zone, or "" when unset.
func formatUTC(t *timestamppb.Timestamp) string {
	if t == nil {
		return ""
	}
	return t.AsTime().UTC().Format("2006-01-02 15:04:05 MST")
}

// formatDuration renders a duration rounded to the millisecond, or "" when unset.
func formatDuration(d *durationpb.Duration) string {
	if d == nil {
		return ""
	}
	return d.AsDuration().Round(time.Millisecond).String()
}

// shortDuration renders a duration that may be below a millisecond: to the
// 10 µs below 10 ms, to the millisecond above; "0s" when unset.
func shortDuration(d *durationpb.Duration) string {
	v := d.AsDuration()
	if v < 10*time.Millisecond {
		return v.Round(10 * time.Microsecond).String()
	}
	return v.Round(time.Millisecond).String()
}

// yesNo renders a bool for tables.
func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// orDash renders "" as "-" so that table cells never look missing.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func formatEnvironment(w io.Writer, e *cutoverv1.Environment) {
	t := newTable(w)
	row(t, "NAME", e.GetName())
	row(t, "TWO-STAGE", yesNo(e.GetTwoStage()))
	field(t, "PREPARED-TTL", formatDuration(e.GetPreparedTtl()))
	row(t, "REQUIRE-APPROVAL", yesNo(e.GetRequireApproval()))
	row(t, "REQUIRE-PREPARED", yesNo(e.GetRequirePrepared()))
	row(t, "WINDOWS", orDash(strings.Join(e.GetWindows(), "; ")))
	if len(e.GetWindows()) > 0 {
		open := yesNo(e.GetWindowOpen())
		if e.GetWindowClose() != nil {
			open += ", until " + formatUTC(e.GetWindowClose())
		}
		row(t, "WINDOW-OPEN", open)
		next := e.GetNextWindow()
		if next == "" {
			next = formatUTC(e.GetNextWindowOpen())
		}
		field(t, "NEXT-WINDOW", next)
	}
	if db := e.GetDatabase(); db.GetDriver() != "" {
		row(t, "DATABASE", db.GetDriver()+" "+db.GetDsn())
		if db.GetShadowDsn() != "" {
			row(t, "SHADOW-DSN", db.GetShadowDsn())
		}
	}
	if e.GetKeepReleases() != 0 {
		row(t, "KEEP-RELEASES", fmt.Sprint(e.GetKeepReleases()))
	}
	field(t, "STAGE2-DEADLINES", formatDeadlines(e.GetStage2Deadlines()))
	field(t, "CREATED", formatTime(e.GetCreateTime()))
	field(t, "UPDATED", formatTime(e.GetUpdateTime()))
	_ = t.Flush()
	if len(e.GetDeployedVersions()) > 0 {
		fmt.Fprintln(w)
		t = newTable(w)
		row(t, "APPLICATION", "VERSION", "RELEASE", "DEPLOYMENT", "DEPLOYED")
		for _, name := range sortedKeys(e.GetDeployedVersions()) {
			v := e.GetDeployedVersions()[name]
			row(t, name, v.GetVersionLabel(), shortID(v.GetReleaseId()), v.GetDeploymentId(), formatTime(v.GetDeployTime()))
		}
		_ = t.Flush()
	}
}

func formatEnvironments(w io.Writer, resp *cutoverv1.ListEnvironmentsResponse) {
	t := newTable(w)
	row(t, "NAME", "TWO-STAGE", "PREPARED-TTL", "APPROVAL", "WINDOWS", "DEPLOYED")
	for _, e := range resp.GetEnvironments() {
		var deployed []string
		for _, name := range sortedKeys(e.GetDeployedVersions()) {
			deployed = append(deployed, name+"="+e.GetDeployedVersions()[name].GetVersionLabel())
		}
		row(t, e.GetName(), yesNo(e.GetTwoStage()), orDash(formatDuration(e.GetPreparedTtl())),
			yesNo(e.GetRequireApproval()), orDash(strings.Join(e.GetWindows(), "; ")), orDash(strings.Join(deployed, " ")))
	}
	_ = t.Flush()
}

func formatApplication(w io.Writer, a *cutoverv1.Application) {
	t := newTable(w)
	row(t, "NAME", a.GetName())
	row(t, "SOURCE", a.GetSourceDir())
	field(t, "REGISTERED", formatTime(a.GetCreateTime()))
	field(t, "UPDATED", formatTime(a.GetUpdateTime()))
	_ = t.Flush()
	if len(a.GetReleases()) > 0 {
		fmt.Fprintln(w)
		t = newTable(w)
		row(t, "RELEASE", "SIZE", "FILES", "CHUNKS", "BUILT")
		for _, r := range a.GetReleases() {
			row(t, r.GetId(), formatBytes(r.GetSizeBytes()), fmt.Sprint(r.GetFileCount()), fmt.Sprint(r.GetChunkCount()), formatTime(r.GetCreateTime()))
		}
		_ = t.Flush()
	}
}

func formatApplications(w io.Writer, resp *cutoverv1.ListApplicationsResponse) {
	t := newTable(w)
	row(t, "NAME", "SOURCE", "LATEST-RELEASE", "REGISTERED")
	for _, a := range resp.GetApplications() {
		latest := "-"
		if len(a.GetReleases()) > 0 {
			latest = shortID(a.GetReleases()[0].GetId())
		}
		row(t, a.GetName(), a.GetSourceDir(), latest, formatTime(a.GetCreateTime()))
	}
	_ = t.Flush()
}

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
	if len(p.GetPendingMigrations()) == 0 && strings.TrimSpace(p.GetScript()) == "" {
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
	fmt.Fprint(w, p.GetScript())
	if !strings.HasSuffix(p.GetScript(), "\n") {
		fmt.Fprintln(w)
	}
}

// formatAgents prints one row per agent and application. The REVOKED
// column is there only when an agent was revoked.
func formatAgents(w io.Writer, resp *cutoverv1.ListAgentsResponse) {
	revoked := false
	for _, a := range resp.GetAgents() {
		revoked = revoked || a.GetRevokeTime() != nil
	}
	t := newTable(w)
	header := []string{"NAME", "ENVIRONMENT", "CONNECTED", "IDENTITY", "CERT-EXPIRES"}
	if revoked {
		header = append(header, "REVOKED")
	}
	row(t, append(header, "APPLICATION", "RUNNING", "STAGED", "LAST-SEEN", "DRIFT")...)
	for _, a := range resp.GetAgents() {
		apps := a.GetApplications()
		if len(apps) == 0 {
			apps = []*cutoverv1.AgentApplication{{}}
		}
		for i, app := range apps {
			cells := []string{a.GetName(), a.GetEnvironment(), yesNo(a.GetConnected()), orDash(a.GetIdentity()), orDash(formatTime(a.GetCertExpireTime()))}
			if revoked {
				cells = append(cells, orDash(formatTime(a.GetRevokeTime())))
			}
			seen, drift := formatTime(a.GetLastSeenTime()), formatDrift(a)
			if i > 0 {
				clear(cells)
				seen, drift = "", ""
			}
			staged := make([]string, 0, len(app.GetStagedReleaseIds()))
			for _, id := range app.GetStagedReleaseIds() {
				staged = append(staged, shortID(id))
			}
			row(t, append(cells, orDash(app.GetName()), orDash(shortID(app.GetRunningReleaseId())),
				orDash(strings.Join(staged, ",")), orDash(seen), drift)...)
		}
	}
	_ = t.Flush()
}

// formatDrift says whether a drifts from what its environment records,
// and how: "no", or "yes (hello: runs 1a2b…, recorded 3c4d…)".
func formatDrift(a *cutoverv1.Agent) string {
	if !a.GetDrifted() {
		return "no"
	}
	return "yes (" + a.GetDrift() + ")"
}

// formatAgent prints one agent, as agent revoke answers it.
func formatAgent(w io.Writer, a *cutoverv1.Agent) {
	t := newTable(w)
	row(t, "NAME", a.GetName())
	row(t, "ENVIRONMENT", a.GetEnvironment())
	row(t, "IDENTITY", orDash(a.GetIdentity()))
	row(t, "CONNECTED", yesNo(a.GetConnected()))
	row(t, "CERT-EXPIRES", orDash(formatTime(a.GetCertExpireTime())))
	row(t, "REVOKED", orDash(formatTime(a.GetRevokeTime())))
	field(t, "LAST-SEEN", formatTime(a.GetLastSeenTime()))
	_ = t.Flush()
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
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
