package fleet

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/controlplane/store"
	"github.com/cutover-dev/cutover/pkg/errkind"
)

func newFleet(t testing.TB) (*Fleet, *store.Store) {
	t.Helper()
	s, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	f, err := New(Config{Store: s})
	if err != nil {
		t.Fatal(err)
	}
	return f, s
}

func next(t *testing.T, s *Session) Command {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := s.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestOutstandingCommandsAreResentOnReconnect(t *testing.T) {
	f, _ := newFleet(t)
	stage := Command{Kind: Stage, ID: "d-1.stage.fe1", DeploymentID: "d-1", Releases: []ReleaseRef{{"hello", "r2"}}}
	drop := Command{Kind: Drop, ID: "d-0.drop.fe1", DeploymentID: "d-0"}
	f.Send("fe1", drop)  // not connected: kept for later
	f.Send("fe1", stage) // idem
	s1, err := f.Connect(Hello{Name: "fe1", Environment: "prod"})
	if err != nil {
		t.Fatal(err)
	}
	if c := next(t, s1); c.ID != drop.ID {
		t.Fatalf("first command = %s, want %s", c.ID, drop.ID)
	}
	if c := next(t, s1); c.ID != stage.ID {
		t.Fatalf("second command = %s, want %s", c.ID, stage.ID)
	}
	ctx := context.Background()
	if err := f.Report(ctx, s1, Report{CommandID: drop.ID, DeploymentID: "d-0", Outcome: Done}); err != nil {
		t.Fatal(err)
	}
	if r := <-f.Reports(); r.Agent != "fe1" || r.CommandID != drop.ID {
		t.Fatalf("report = %+v", r)
	}
	// Progress does not end the command.
	_ = f.Report(ctx, s1, Report{CommandID: stage.ID, DeploymentID: "d-1", Outcome: Progress})
	<-f.Reports()

	// A new session of the same name replaces the first and gets the stage again.
	s2, err := f.Connect(Hello{Name: "fe1", Environment: "prod"})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-s1.Done():
	default:
		t.Fatal("the replaced session is not closed")
	}
	if _, err := s1.Next(ctx); !errors.Is(err, errkind.Unavailable) {
		t.Fatalf("Next on a replaced session: %v", err)
	}
	if c := next(t, s2); c.ID != stage.ID {
		t.Fatalf("resent command = %s, want %s", c.ID, stage.ID)
	}
	f.Disconnect(s1) // the old one's late disconnect must not remove the new one
	if got := f.Connected("prod"); len(got) != 1 {
		t.Fatalf("connected after the old session's disconnect = %d, want 1", len(got))
	}

	// DONE updates the agent's view (staged), and forgets the command.
	_ = f.Report(ctx, s2, Report{CommandID: stage.ID, DeploymentID: "d-1", Outcome: Done})
	<-f.Reports()
	v := f.Connected("prod")[0]
	if !v.Holds("hello", "r2") {
		t.Fatalf("after stage DONE the agent does not hold r2: %+v", v)
	}
	f.Disconnect(s2)
	s3, _ := f.Connect(Hello{Name: "fe1", Environment: "prod"})
	ctxShort, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if c, err := s3.Next(ctxShort); err == nil {
		t.Fatalf("an answered command was resent: %+v", c)
	}
}

func TestForgetDropsADeploymentsCommands(t *testing.T) {
	f, _ := newFleet(t)
	f.Send("fe1", Command{Kind: Stage, ID: "a", DeploymentID: "d-1"})
	f.Send("fe1", Command{Kind: Stage, ID: "b", DeploymentID: "d-2"})
	f.Send("fe1", Command{Kind: Stage, ID: "a", DeploymentID: "d-1"}) // a resend is not recorded twice
	f.Forget("d-1")
	s, _ := f.Connect(Hello{Name: "fe1", Environment: "prod"})
	if c := next(t, s); c.ID != "b" {
		t.Fatalf("command = %s, want b", c.ID)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if c, err := s.Next(ctx); err == nil {
		t.Fatalf("unexpected command %+v", c)
	}
}

func TestAgentsAreRecordedAndListed(t *testing.T) {
	f, st := newFleet(t)
	if _, err := f.Connect(Hello{Name: "Bad Name", Environment: "prod"}); !errors.Is(err, errkind.InvalidArgument) {
		t.Fatalf("bad name: %v", err)
	}
	b, _ := f.Connect(Hello{Name: "fe2", Environment: "prod"})
	a, _ := f.Connect(Hello{Name: "fe1", Environment: "prod", Labels: map[string]string{"rack": "a"}})
	if _, err := f.Connect(Hello{Name: "fe9", Environment: "staging"}); err != nil {
		t.Fatal(err)
	}
	if err := f.Status(a, []model.AgentApplication{{Name: "hello", RunningReleaseID: "r1"}}); err != nil {
		t.Fatal(err)
	}
	f.Disconnect(b)
	got, err := f.Agents("prod")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Name != "fe1" || !got[0].Connected || got[1].Name != "fe2" || got[1].Connected {
		t.Fatalf("agents = %+v", got)
	}
	if all, _ := f.Agents(""); len(all) != 3 || all[2].Environment != "staging" {
		t.Fatalf("all agents = %+v", all)
	}
	// The status is durable.
	_ = st.View(func(tx model.Tx) error {
		rec, err := tx.Agent("fe1")
		if err != nil || rec.Applications[0].RunningReleaseID != "r1" || rec.Labels["rack"] != "a" {
			t.Errorf("stored agent = %+v, %v", rec, err)
		}
		return nil
	})
	f.Close()
	if got := f.Connected("prod"); len(got) != 0 {
		t.Fatalf("connected after Close = %d", len(got))
	}
}

func TestApplyDone(t *testing.T) {
	apps := []model.AgentApplication{{Name: "hello", RunningReleaseID: "r1", StagedReleaseIDs: []string{"r1"}}}
	staged := applyDone(apps, Command{Kind: Stage, Releases: []ReleaseRef{{"hello", "r2"}, {"web", "w1"}}})
	if len(apps[0].StagedReleaseIDs) != 1 {
		t.Fatal("applyDone changed its input")
	}
	v := AgentView{Agent: model.Agent{Applications: staged}}
	if !v.Holds("hello", "r2") || !v.Holds("web", "w1") || v.Holds("web", "r2") {
		t.Fatalf("after stage: %+v", staged)
	}
	active := applyDone(staged, Command{Kind: Commit, Releases: []ReleaseRef{{"hello", "r2"}}})
	if active[0].RunningReleaseID != "r2" {
		t.Fatalf("after activate: %+v", active)
	}
}

func TestRevokeFailsOutstandingCommands(t *testing.T) {
	f, _ := newFleet(t)
	s, err := f.Connect(Hello{Name: "fe1", Environment: "prod"})
	if err != nil {
		t.Fatal(err)
	}
	stage := Command{Kind: Stage, ID: "d-1.stage.fe1", DeploymentID: "d-1"}
	f.Send("fe1", stage)
	f.Revoke("fe1", "agent prod/fe1's certificate was revoked by alice")
	select {
	case <-s.Done():
	default:
		t.Fatal("the session is still open")
	}
	r := <-f.Reports()
	if r.Agent != "fe1" || r.CommandID != stage.ID || r.Outcome != CommandFailed || r.Error == "" {
		t.Fatalf("report = %+v", r)
	}
	if got := f.Connected("prod"); len(got) != 0 {
		t.Errorf("still connected: %+v", got)
	}
}

func TestRemove(t *testing.T) {
	f, st := newFleet(t)
	s1, err := f.Connect(Hello{Name: "fe1", Environment: "prod"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Connect(Hello{Name: "fe2", Environment: "prod"}); err != nil {
		t.Fatal(err)
	}
	if err := st.Update(func(tx model.Tx) error {
		return tx.PutEnrollment(&model.Enrollment{Name: "fe3", Environment: "prod"}) // enrolled, never connected
	}); err != nil {
		t.Fatal(err)
	}
	f.Disconnect(s1)
	f.Send("fe1", Command{Kind: Drop, ID: "d-1.drop.fe1", DeploymentID: "d-1"})

	tests := []struct {
		name, env, agent string
		want             error // kind; nil: removed
	}{
		{"connected", "prod", "fe2", errkind.FailedPrecondition},
		{"unknown", "prod", "fe9", errkind.NotFound},
		{"other environment", "staging", "fe1", errkind.InvalidArgument},
		{"gone", "prod", "fe1", nil},
		{"gone again", "prod", "fe1", errkind.NotFound},
		{"enrolled only, any environment", "", "fe3", nil},
	}
	for _, tt := range tests {
		a, err := f.Remove(tt.env, tt.agent)
		if tt.want != nil {
			if !errors.Is(err, tt.want) {
				t.Errorf("%s: err = %v, want %v", tt.name, err, tt.want)
			}
			continue
		}
		if err != nil || a.Name != tt.agent || a.Environment != "prod" {
			t.Errorf("%s: %+v, %v", tt.name, a, err)
		}
	}
	views, err := f.Agents("prod")
	if err != nil || len(views) != 1 || views[0].Name != "fe2" {
		t.Fatalf("agents after the removals: %+v, %v", views, err)
	}
	if err := st.View(func(tx model.Tx) error {
		_, err := tx.Enrollment("fe3")
		return err
	}); !errors.Is(err, errkind.NotFound) {
		t.Errorf("fe3's enrollment after remove: %v", err)
	}
	// fe1's outstanding command was dropped: a new fe1 gets nothing.
	s, err := f.Connect(Hello{Name: "fe1", Environment: "prod"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if c, err := s.Next(ctx); err == nil {
		t.Errorf("a removed agent that came back got %+v", c)
	}
}

func TestJoined(t *testing.T) {
	f, _ := newFleet(t)
	for _, n := range []string{"fe2", "fe1", "fe2"} {
		if _, err := f.Connect(Hello{Name: n, Environment: "prod"}); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-f.Joins():
	default:
		t.Fatal("Joins not poked")
	}
	if got := f.Joined(); len(got) != 2 || got[0] != "fe1" || got[1] != "fe2" {
		t.Fatalf("Joined = %v", got)
	}
	if got := f.Joined(); len(got) != 0 {
		t.Fatalf("Joined again = %v", got)
	}
}
