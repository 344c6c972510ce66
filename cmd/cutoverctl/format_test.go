package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

func TestFormatBytes(t *testing.T) {
	tests := []struct {
		in   int64
		want string
	}{
		{0, "0 B"},
		{1023, "1023 B"},
		{1024, "1.0 KiB"},
		{1536, "1.5 KiB"},
		{5 << 20, "5.0 MiB"},
		{3 << 30, "3.0 GiB"},
		{5000 << 30, "5000.0 GiB"},
	}
	for _, tt := range tests {
		if got := formatBytes(tt.in); got != tt.want {
			t.Errorf("formatBytes(%d) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestNames(t *testing.T) {
	if got := stateName(cutoverv1.DeploymentState_DEPLOYMENT_STATE_ROLLED_BACK); got != "ROLLED_BACK" {
		t.Errorf("stateName = %q", got)
	}
	if got := agentStateName(cutoverv1.AgentDeploymentState_AGENT_DEPLOYMENT_STATE_STAGED); got != "STAGED" {
		t.Errorf("agentStateName = %q", got)
	}
	if got := shortID("0123456789abcdef"); got != "0123456789ab" {
		t.Errorf("shortID = %q", got)
	}
	if got := shortID("abc"); got != "abc" {
		t.Errorf("shortID(short) = %q", got)
	}
}

func sampleDeployment() *cutoverv1.Deployment {
	return &cutoverv1.Deployment{
		Id:          "d-3",
		Environment: "production",
		State:       cutoverv1.DeploymentState_DEPLOYMENT_STATE_ROLLED_BACK,
		Error:       "agent fe-2: health check failed",
		Applications: []*cutoverv1.DeploymentApplication{
			{Name: "hello", VersionLabel: "v3", ReleaseId: "aaaaaaaaaaaaaaaaaaaa", PreviousReleaseId: "bbbbbbbbbbbbbbbbbbbb"},
		},
		Agents: []*cutoverv1.DeploymentAgent{
			{Name: "fe-1", State: cutoverv1.AgentDeploymentState_AGENT_DEPLOYMENT_STATE_ROLLED_BACK, ReleaseBytes: 2048, TransferredBytes: 1024},
			{Name: "fe-2", State: cutoverv1.AgentDeploymentState_AGENT_DEPLOYMENT_STATE_FAILED, Error: "health check failed"},
		},
		ActivationSpread: durationpb.New(12345 * time.Microsecond),
		CreateTime:       timestamppb.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)),
	}
}

func TestFormatDeployment(t *testing.T) {
	var b bytes.Buffer
	formatDeployment(&b, sampleDeployment())
	out := b.String()
	for _, want := range []string{
		"ID                 d-3\n",
		"STATE              ROLLED_BACK\n",
		"ERROR              agent fe-2: health check failed",
		"ACTIVATION-SPREAD  12ms",
		"hello        v3       aaaaaaaaaaaa  bbbbbbbbbbbb",
		"fe-1   ROLLED_BACK  1.0 KiB      2.0 KiB",
		"fe-2   FAILED       0 B          0 B           -        health check failed",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("formatDeployment output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "FINISHED") {
		t.Errorf("formatDeployment shows an unset time:\n%s", out)
	}
}

func TestFormatHooksAndPackage(t *testing.T) {
	d := &cutoverv1.Deployment{Id: "d-4", ArmDuration: durationpb.New(40 * time.Millisecond), HooksDuration: durationpb.New(2 * time.Second),
		Agents: []*cutoverv1.DeploymentAgent{{Name: "fe-2", Hooks: []*cutoverv1.HookResult{
			{Application: "shop", Kind: cutoverv1.HookKind_HOOK_KIND_BEFORE_ACTIVATE, Command: "suspend", ExitCode: 4, Duration: durationpb.New(time.Second), Output: "a\nb\nc\ncannot suspend\n"},
			{Application: "shop", Kind: cutoverv1.HookKind_HOOK_KIND_AFTER_ACTIVATE, Command: "resume", Duration: durationpb.New(time.Second)}}}},
		Package: &cutoverv1.DeploymentPackage{Application: "shop", Ran: true, Changed: []string{"mobile/app.js"}, SizeBytes: 2048, Duration: durationpb.New(time.Second)}}
	var b bytes.Buffer
	formatDeployment(&b, d)
	out := b.String()
	for _, want := range []string{
		"ARM          40ms\n", "HOOKS        2s\n",
		"fe-2   before_activate  shop         suspend  4     1s    b | c | cannot suspend",
		"fe-2   after_activate   shop         resume   0     1s    -",
		"PACKAGE  shop: 2.0 KiB in 1s (changed: mobile/app.js); download with cutoverctl deploy package d-4 -o FILE",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("formatDeployment output lacks %q:\n%s", want, out)
		}
	}
}

func TestFormatAgents(t *testing.T) {
	expires := timestamppb.New(time.Date(2027, 1, 2, 3, 4, 5, 0, time.UTC))
	agents := []*cutoverv1.Agent{
		{Name: "fe-1", Environment: "demo", Connected: true, Identity: "cutover://demo/agent/fe-1", CertExpireTime: expires,
			Applications: []*cutoverv1.AgentApplication{
				{Name: "hello", RunningReleaseId: "1111111111111111", StagedReleaseIds: []string{"2222222222222222", "3333333333333333"}},
				{Name: "web"},
			}},
		{Name: "fe-2", Environment: "demo"},
	}
	var b bytes.Buffer
	formatAgents(&b, &cutoverv1.ListAgentsResponse{Agents: agents})
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("want header and 3 rows, got:\n%s", b.String())
	}
	if f := strings.Fields(lines[0]); strings.Join(f, " ") != "NAME ENVIRONMENT CONNECTED IDENTITY CERT-EXPIRES APPLICATION RUNNING STAGED LAST-SEEN DRIFT" {
		t.Errorf("header = %q (no REVOKED column when no agent is revoked)", lines[0])
	}
	for _, want := range []string{"fe-1", "yes", "cutover://demo/agent/fe-1", formatTime(expires), "hello", "111111111111", "222222222222,333333333333"} {
		if !strings.Contains(lines[1], want) {
			t.Errorf("row %q lacks %q", lines[1], want)
		}
	}
	if f := strings.Fields(lines[2]); len(f) != 4 || f[0] != "web" {
		t.Errorf("second application's row = %q, want only its own cells", lines[2])
	}
	if f := strings.Fields(lines[3]); len(f) < 5 || f[0] != "fe-2" || f[2] != "no" || f[3] != "-" || f[4] != "-" {
		t.Errorf("row for a disconnected agent never enrolled = %q", lines[3])
	}

	if !strings.HasSuffix(strings.TrimSpace(lines[1]), " no") {
		t.Errorf("DRIFT of an agent not drifted = %q, want no", lines[1])
	}
	agents[0].Drifted, agents[0].Drift = true, "hello: runs 111111111111, recorded 222222222222"
	b.Reset()
	formatAgents(&b, &cutoverv1.ListAgentsResponse{Agents: agents})
	lines = strings.Split(strings.TrimSpace(b.String()), "\n")
	if !strings.HasSuffix(strings.TrimSpace(lines[1]), " yes (hello: runs 111111111111, recorded 222222222222)") {
		t.Errorf("DRIFT of a drifted agent: %q", lines[1])
	}
	if f := strings.Fields(lines[2]); len(f) != 4 || f[0] != "web" {
		t.Errorf("second application's row of a drifted agent = %q, want only its own cells", lines[2])
	}

	agents[1].RevokeTime = expires
	b.Reset()
	formatAgents(&b, &cutoverv1.ListAgentsResponse{Agents: agents})
	lines = strings.Split(strings.TrimSpace(b.String()), "\n")
	if h := strings.Fields(lines[0]); h[5] != "REVOKED" || !strings.Contains(lines[3], formatTime(expires)) {
		t.Errorf("with a revoked agent:\n%s", b.String())
	}
	if f := strings.Fields(lines[1]); f[6] != "-" {
		t.Errorf("REVOKED of an agent not revoked = %q, want -", f[6])
	}
}

func TestProgressLines(t *testing.T) {
	at := timestamppb.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	ev := func(state cutoverv1.DeploymentState, msg string, agents ...*cutoverv1.DeploymentAgent) *cutoverv1.DeploymentEvent {
		return &cutoverv1.DeploymentEvent{Deployment: &cutoverv1.Deployment{Id: "d-1", State: state, Agents: agents}, Message: msg, Time: at}
	}
	agent := func(name string, s cutoverv1.AgentDeploymentState, got, want int64) *cutoverv1.DeploymentAgent {
		return &cutoverv1.DeploymentAgent{Name: name, State: s, TransferredBytes: got, ReleaseBytes: want}
	}
	const (
		preparing = cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARING
		prepared  = cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED
		pending   = cutoverv1.AgentDeploymentState_AGENT_DEPLOYMENT_STATE_PENDING
		staging   = cutoverv1.AgentDeploymentState_AGENT_DEPLOYMENT_STATE_STAGING
		staged    = cutoverv1.AgentDeploymentState_AGENT_DEPLOYMENT_STATE_STAGED
	)
	steps := []struct {
		ev   *cutoverv1.DeploymentEvent
		want []string
	}{
		{ev(preparing, "building hello"), []string{"d-1  PREPARING: building hello"}},
		{ev(preparing, "again"), nil},
		{ev(preparing, "", agent("fe-1", pending, 0, 0)), []string{"d-1  agent fe-1 PENDING"}},
		{ev(preparing, "", agent("fe-1", staging, 0, 2048)), []string{"d-1  agent fe-1 STAGING 0 B of 2.0 KiB"}},
		{ev(preparing, "", agent("fe-1", staging, 1024, 2048)), []string{"d-1  agent fe-1 STAGING 1.0 KiB of 2.0 KiB"}},
		{ev(prepared, "", agent("fe-1", staged, 2048, 2048)), []string{"d-1  PREPARED", "d-1  agent fe-1 STAGED 2.0 KiB of 2.0 KiB"}},
	}
	var p progress
	for i, s := range steps {
		got := p.lines(s.ev, time.Time{})
		if len(got) != len(s.want) {
			t.Fatalf("step %d: lines %q, want %q", i, got, s.want)
		}
		for j := range got {
			if !strings.HasSuffix(got[j], "  "+s.want[j]) {
				t.Errorf("step %d: line %q, want suffix %q", i, got[j], s.want[j])
			}
		}
	}
}

func TestFormatPlanEmpty(t *testing.T) {
	var b bytes.Buffer
	formatPlan(&b, &cutoverv1.DeploymentPlan{DeploymentId: "d-1"})
	if got := b.String(); got != "-- deployment d-1 runs no SQL\n" {
		t.Errorf("formatPlan = %q", got)
	}
}

// TestFormatPlanPhases: deploy plan shows the expand phase, then the
// contract phase with its migrations, the irreversible migrations, and the
// down scripts commented out, so that the output stays the script that
// continue runs.
func TestFormatPlanPhases(t *testing.T) {
	var b bytes.Buffer
	formatPlan(&b, &cutoverv1.DeploymentPlan{
		DeploymentId:       "d-2",
		PendingMigrations:  []*cutoverv1.PendingMigration{{Application: "hello", Version: 2, Name: "0002_agent.up.sql", Checksum: "ab12"}},
		Script:             "BEGIN;\nALTER TABLE visits ADD COLUMN agent TEXT;\nCOMMIT;\n",
		ContractMigrations: []*cutoverv1.PendingMigration{{Application: "hello", Version: 3, Name: "0003_legacy.contract.sql", Checksum: "cd34"}},
		ContractScript:     "BEGIN;\nDROP TABLE legacy;\nCOMMIT;",
		ContractDownScript: "BEGIN;\nCREATE TABLE legacy (id INTEGER);\nCOMMIT;\n",
		DownScript:         "BEGIN;\nALTER TABLE visits DROP COLUMN agent;\nCOMMIT;\n",
		Irreversible:       []*cutoverv1.IrreversibleMigration{{Application: "hello", Name: "0004_purge.contract.sql", Phase: "contract", Reason: "marked -- cutover:irreversible"}},
	})
	got := b.String()
	for _, want := range []string{
		"-- hello 0002 0002_agent.up.sql sha256:ab12\n",
		"-- ===== phase 1: expand, run in stage 2 before the swap\nBEGIN;\nALTER TABLE visits ADD COLUMN agent TEXT;\nCOMMIT;\n",
		"\n-- ===== phase 2: contract, run in stage 2 once every front-end runs the new releases and passed its checks\n" +
			"-- hello 0003 0003_legacy.contract.sql sha256:cd34\nBEGIN;\nDROP TABLE legacy;\nCOMMIT;\n",
		"-- IRREVERSIBLE (contract): hello 0004_purge.contract.sql: marked -- cutover:irreversible\n",
		"-- ===== down of contract (rollback --with-database, before the swap back); not run by continue, shown commented out:\n" +
			"-- | BEGIN;\n-- | CREATE TABLE legacy (id INTEGER);\n-- | COMMIT;\n",
		"-- ===== down of expand (stage 2's rollback, and rollback --with-database after the swap back); not run by continue, shown commented out:\n" +
			"-- | BEGIN;\n-- | ALTER TABLE visits DROP COLUMN agent;\n-- | COMMIT;\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("deploy plan lacks\n%s\nin:\n%s", want, got)
		}
	}
	for _, line := range strings.Split(got, "\n") {
		if strings.Contains(line, "CREATE TABLE legacy") || strings.Contains(line, "DROP COLUMN") {
			if !strings.HasPrefix(line, "-- | ") {
				t.Errorf("a down statement is not commented out: %q", line)
			}
		}
	}
}

func TestSummary(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		d    *cutoverv1.Deployment
		want string
	}{
		{&cutoverv1.Deployment{Id: "d-2", State: cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED,
			BuildDuration: durationpb.New(1500 * time.Millisecond), TransferDuration: durationpb.New(200 * time.Millisecond)},
			"deployment d-2 is PREPARED (build 1.5s, transfer 200ms); continue it with: cutoverctl deploy continue d-2"},
		{&cutoverv1.Deployment{Id: "d-2", State: cutoverv1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED,
			ActivateTime: timestamppb.New(at), FinishTime: timestamppb.New(at.Add(36 * time.Millisecond)),
			ActivationSpread: durationpb.New(2 * time.Millisecond)},
			"deployment d-2 is DEPLOYED (stage 2 took 36ms, activation spread 2ms)"},
		{&cutoverv1.Deployment{Id: "d-3", State: cutoverv1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED,
			ActivateTime: timestamppb.New(at), FinishTime: timestamppb.New(at.Add(60 * time.Millisecond)),
			SqlDuration: durationpb.New(25 * time.Millisecond), SwapDuration: durationpb.New(35 * time.Millisecond),
			ActivationSpread: durationpb.New(2 * time.Millisecond)},
			"deployment d-3 is DEPLOYED (stage 2 took 60ms, SQL 25ms, swap 35ms, activation spread 2ms)"},
		{sampleDeployment(), "deployment d-3 is ROLLED_BACK: agent fe-2: health check failed"},
		{&cutoverv1.Deployment{Id: "d-4", State: cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED, ExpireTime: timestamppb.New(at),
			ScheduledTime: timestamppb.New(at)},
			"deployment d-4 is PREPARED; expires " + formatTime(timestamppb.New(at)) + "; stage 2 scheduled for " + formatTime(timestamppb.New(at))},
	}
	for _, tt := range tests {
		if got := summary(tt.d); got != tt.want {
			t.Errorf("summary = %q\nwant      %q", got, tt.want)
		}
	}
}

func TestFormatWindowsAndApproval(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var b bytes.Buffer
	formatEnvironment(&b, &cutoverv1.Environment{Name: "prod", Windows: []string{"Mon-Fri 02:00-04:00 UTC"}, WindowOpen: true, WindowClose: timestamppb.New(at)})
	formatEnvironment(&b, &cutoverv1.Environment{Name: "prod", Windows: []string{"Mon-Fri 02:00-04:00 UTC"},
		NextWindowOpen: timestamppb.New(at), NextWindow: "Mon 2026-01-05 02:00 UTC (2026-01-05 02:00 UTC), window x"})
	formatDeployment(&b, &cutoverv1.Deployment{Id: "d-1", State: cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED, ExpireTime: timestamppb.New(at),
		ScheduledTime: timestamppb.New(at), PredictedStage2Duration: durationpb.New(90 * time.Second),
		Approval: &cutoverv1.Approval{Actor: "bob@ops", Time: timestamppb.New(at), Comment: "CAB-1"}})
	for _, want := range []string{"WINDOW-OPEN       yes, until 2026-01-02 03:04:05 UTC", "WINDOW-OPEN       no",
		"NEXT-WINDOW       Mon 2026-01-05 02:00 UTC (2026-01-05 02:00 UTC), window x", "EXPIRES", "SCHEDULED", "PREDICTED-STAGE2  1m30s",
		"APPROVED          bob@ops at " + formatTime(timestamppb.New(at)) + ": CAB-1"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, b.String())
		}
	}
}

func TestProgressShowsEventsThatKeepTheState(t *testing.T) {
	at := timestamppb.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	prepared := cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED
	entry := func(msg string) *cutoverv1.DeploymentTransition {
		return &cutoverv1.DeploymentTransition{State: prepared, Message: msg}
	}
	ev := func(h ...*cutoverv1.DeploymentTransition) *cutoverv1.DeploymentEvent {
		return &cutoverv1.DeploymentEvent{Deployment: &cutoverv1.Deployment{Id: "d-1", State: prepared, History: h}, Time: at}
	}
	var p progress
	if got := p.lines(ev(entry("every agent has the releases staged")), time.Time{}); len(got) != 1 || !strings.HasSuffix(got[0], "d-1  PREPARED") {
		t.Fatalf("first event: %q", got)
	}
	got := p.lines(ev(entry("every agent has the releases staged"), entry("approved by bob"), entry("stage 2 scheduled for now")), time.Time{})
	if len(got) != 2 || !strings.HasSuffix(got[0], "d-1  PREPARED: approved by bob") || !strings.HasSuffix(got[1], "d-1  PREPARED: stage 2 scheduled for now") {
		t.Fatalf("events that keep the state: %q", got)
	}
}
