package session

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cutover-dev/cutover/agent/store"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// TestFencedCommandRefused checks that a command from a lower epoch than
// one seen before is not run, is answered FAILED, is counted, and ends the
// session (the agent reconnects), and that the epoch seen is kept durably.
func TestFencedCommandRefused(t *testing.T) {
	f := &fakeController{sessions: make(chan *fakeSession, 4)}
	_, addr := serve(t, f, "127.0.0.1:0")
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	reg := prometheus.NewRegistry()
	h := &fakeHandler{calls: map[string]int{}}
	startAgent(t, addr, h, func(c *Config) { c.Fence, c.Registerer = st, reg })
	s := next(t, f.sessions)

	stage := func(id string, epoch uint64) *cutoverv1.ConnectResponse {
		return &cutoverv1.ConnectResponse{Epoch: epoch, Command: &cutoverv1.ConnectResponse_Stage{Stage: &cutoverv1.StageCommand{CommandId: id, DeploymentId: "d-1"}}}
	}
	if err := s.stream.Send(stage("new", 5)); err != nil {
		t.Fatal(err)
	}
	if r := finalReport(t, s); r.GetCommandId() != "new" || r.GetOutcome() != cutoverv1.CommandOutcome_COMMAND_OUTCOME_DONE {
		t.Fatalf("the leader's command: %v", r)
	}
	if err := s.stream.Send(stage("old", 3)); err != nil {
		t.Fatal(err)
	}
	var r *cutoverv1.CommandReport
	for r == nil {
		r = next(t, s.msgs).GetReport()
	}
	if r.GetCommandId() != "old" || r.GetOutcome() != cutoverv1.CommandOutcome_COMMAND_OUTCOME_FAILED ||
		!strings.Contains(r.GetError(), "epoch 3") || !strings.Contains(r.GetError(), "epoch 5") {
		t.Fatalf("the former leader's command was answered %v; want FAILED naming both epochs", r)
	}
	next(t, f.sessions) // the session ended; the agent connected again
	if n := h.count("old"); n != 0 {
		t.Errorf("the former leader's command ran %d times", n)
	}
	if n := counterValue(t, reg, "cutover_agent_fenced_commands_total"); n != 1 {
		t.Errorf("cutover_agent_fenced_commands_total = %v, want 1", n)
	}
	if ok, highest, err := st.AdmitEpoch(4); err != nil || ok || highest != 5 {
		t.Errorf("AdmitEpoch(4) after the session = %v, %d, %v; want refused, 5", ok, highest, err)
	}
}

// counterValue reads a registered counter without labels.
func counterValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("metric %s not registered", name)
	return 0
}
