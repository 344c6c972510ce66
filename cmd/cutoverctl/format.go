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
	if e.GetPeersDisabled() {
		row(t, "PEERS", "off (agents fetch from the controller only)")
	}
	if e.GetStageRate() != 0 {
		row(t, "STAGE-RATE", formatBytes(e.GetStageRate())+"/s")
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
