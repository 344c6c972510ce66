package fleet

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/pkg/errkind"
	"github.com/cutover-dev/cutover/pkg/poll"
)

// callResult is what a Call returned, for a test that runs it in the background.
type callResult struct {
	r   Report
	err error
}

func goCall(ctx context.Context, f *Fleet, agent string, cmd Command) <-chan callResult {
	ch := make(chan callResult, 1)
	go func() {
		r, err := f.Call(ctx, agent, cmd)
		ch <- callResult{r, err}
	}()
	return ch
}

func TestCallDeliversTheFinalReportToTheCaller(t *testing.T) {
	f, _ := newFleet(t)
	s, err := f.Connect(Hello{Name: "fe1", Environment: "prod", Applications: []model.AgentApplication{{Name: "hello", RunningReleaseID: "r1"}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := Command{Kind: StopApp, ID: "stop.hello.fe1.x", Applications: []string{"hello"}}
	done := goCall(ctx, f, "fe1", cmd)
	if c := next(t, s); c.ID != cmd.ID || c.Kind != StopApp {
		t.Fatalf("command = %+v", c)
	}
	if err := f.Report(ctx, s, Report{CommandID: cmd.ID, Outcome: Progress}); err != nil {
		t.Fatal(err)
	}
	if err := f.Report(ctx, s, Report{CommandID: cmd.ID, Outcome: Done}); err != nil {
		t.Fatal(err)
	}
	res := <-done
	if res.err != nil || res.r.Outcome != Done || res.r.Agent != "fe1" {
		t.Fatalf("call = %+v, %v", res.r, res.err)
	}
	select {
	case r := <-f.Reports():
		t.Fatalf("Reports() got %+v: a called command's reports go to the caller only", r)
	default:
	}
	if n := len(f.outstanding["fe1"]); n != 0 {
		t.Errorf("%d commands still outstanding after the call", n)
	}
	if len(f.waiters) != 0 {
		t.Errorf("waiters left: %v", f.waiters)
	}
	if v := f.Connected("prod"); len(v) != 1 || v[0].Applications[0].RunningReleaseID != "" {
		t.Errorf("after a stop, the agent's view = %+v, want hello running nothing", v)
	}
}

func TestCallFailedReportIsAReport(t *testing.T) {
	f, _ := newFleet(t)
	s, err := f.Connect(Hello{Name: "fe1", Environment: "prod"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cmd := Command{Kind: StopApp, ID: "stop.hello.fe1.y", Applications: []string{"hello"}}
	done := goCall(ctx, f, "fe1", cmd)
	next(t, s)
	if err := f.Report(ctx, s, Report{CommandID: cmd.ID, Outcome: CommandFailed, Error: "disk full"}); err != nil {
		t.Fatal(err)
	}
	if res := <-done; res.err != nil || res.r.Outcome != CommandFailed || res.r.Error != "disk full" {
		t.Fatalf("call = %+v, %v", res.r, res.err)
	}
}

func TestCallTimesOutAndForgetsTheCommand(t *testing.T) {
	f, _ := newFleet(t)
	s, err := f.Connect(Hello{Name: "fe1", Environment: "prod"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := Command{Kind: StopApp, ID: "stop.hello.fe1.z", Applications: []string{"hello"}}
	done := goCall(ctx, f, "fe1", cmd)
	next(t, s) // sent; the agent does not answer
	cancel()
	res := <-done
	if !errors.Is(res.err, errkind.Aborted) || !strings.Contains(res.err.Error(), "fe1") {
		t.Fatalf("err = %v, want Aborted naming the agent", res.err)
	}
	dctx, dcancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer dcancel()
	if _, err := f.Call(dctx, "fe2", Command{Kind: StopApp, ID: "stop.hello.fe2.z"}); !errors.Is(err, errkind.DeadlineExceeded) {
		t.Errorf("err = %v, want DeadlineExceeded", err)
	}
	// Forgotten: not resent on reconnect, and a late answer goes nowhere.
	s2, err := f.Connect(Hello{Name: "fe1", Environment: "prod"})
	if err != nil {
		t.Fatal(err)
	}
	s2.mu.Lock()
	queued := len(s2.queue)
	s2.mu.Unlock()
	if queued != 0 {
		t.Fatalf("%d commands resent after the call ended", queued)
	}
	if err := f.Report(context.Background(), s2, Report{CommandID: cmd.ID, Outcome: Done}); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-f.Reports():
		t.Fatalf("late answer reached Reports(): %+v", r)
	default:
	}
	if len(f.outstanding) != 0 || len(f.waiters) != 0 {
		t.Errorf("outstanding %v, waiters %v: want none", f.outstanding, f.waiters)
	}
}

func TestCallIsFailedByRevoke(t *testing.T) {
	f, _ := newFleet(t)
	if _, err := f.Connect(Hello{Name: "fe1", Environment: "prod"}); err != nil {
		t.Fatal(err)
	}
	cmd := Command{Kind: StopApp, ID: "stop.hello.fe1.r", Applications: []string{"hello"}}
	done := goCall(context.Background(), f, "fe1", cmd)
	waitOutstanding(t, f, "fe1", cmd.ID)
	f.Revoke("fe1", "revoked by admin")
	if res := <-done; res.err != nil || res.r.Outcome != CommandFailed || res.r.Error != "revoked by admin" {
		t.Fatalf("call = %+v, %v", res.r, res.err)
	}
}

// waitOutstanding waits until command id is outstanding for agent.
func waitOutstanding(t *testing.T, f *Fleet, agent, id string) {
	t.Helper()
	if err := poll.True(context.Background(), 5*time.Second, "command "+id+" outstanding for "+agent, func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return len(f.outstanding[agent]) > 0
	}); err != nil {
		t.Fatal(err)
	}
}
