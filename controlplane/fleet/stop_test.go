package fleet

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/pkg/errkind"
)

func TestStopApplication(t *testing.T) {
	f, st := newFleet(t)
	if err := st.Update(func(tx model.Tx) error { return tx.PutEnvironment(&model.Environment{Name: "prod"}) }); err != nil {
		t.Fatal(err)
	}
	s1, err := f.Connect(Hello{Name: "fe1", Environment: "prod"})
	if err != nil {
		t.Fatal(err)
	}
	s2, err := f.Connect(Hello{Name: "fe2", Environment: "prod"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	refused := []struct {
		name, env, app string
		agents         []string
		kind           error
	}{
		{"bad app", "prod", "Bad App", nil, errkind.InvalidArgument},
		{"bad agent", "prod", "hello", []string{"-x"}, errkind.InvalidArgument},
		{"unknown environment", "staging", "hello", nil, errkind.NotFound},
		{"agent not connected", "prod", "hello", []string{"fe1", "fe9"}, errkind.FailedPrecondition},
	}
	for _, tt := range refused {
		if _, err := f.StopApplication(ctx, tt.env, tt.app, tt.agents); !errors.Is(err, tt.kind) {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.kind)
		}
	}
	if f.outstanding["fe1"] != nil || f.outstanding["fe2"] != nil {
		t.Fatalf("a refused stop sent commands: %v", f.outstanding)
	}

	// Every connected agent: fe1 stops it, fe2 fails.
	type out struct {
		res []StopResult
		err error
	}
	done := make(chan out, 1)
	go func() {
		res, err := f.StopApplication(ctx, "prod", "hello", nil)
		done <- out{res, err}
	}()
	for _, a := range []struct {
		s   *Session
		rep Report
	}{{s1, Report{Outcome: Done}}, {s2, Report{Outcome: CommandFailed, Error: "cannot remove current"}}} {
		c := next(t, a.s)
		if c.Kind != StopApp || len(c.Applications) != 1 || c.Applications[0] != "hello" || c.DeploymentID != "" {
			t.Fatalf("command = %+v", c)
		}
		a.rep.CommandID = c.ID
		if err := f.Report(ctx, a.s, a.rep); err != nil {
			t.Fatal(err)
		}
	}
	got := <-done
	if got.err != nil {
		t.Fatal(got.err)
	}
	want := []StopResult{{Agent: "fe1"}, {Agent: "fe2", Error: "cannot remove current"}}
	if len(got.res) != 2 || got.res[0] != want[0] || got.res[1] != want[1] {
		t.Errorf("results = %+v, want %+v", got.res, want)
	}
}

func TestStopTargetsNamesEveryMissingAgent(t *testing.T) {
	f, _ := newFleet(t)
	if _, err := f.Connect(Hello{Name: "fe1", Environment: "prod"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Connect(Hello{Name: "fe3", Environment: "staging"}); err != nil {
		t.Fatal(err)
	}
	got, err := f.stopTargets("prod", []string{"fe1", "fe1"})
	if err != nil || len(got) != 1 || got[0] != "fe1" {
		t.Errorf("targets = %v, %v; want [fe1]", got, err)
	}
	_, err = f.stopTargets("prod", []string{"fe2", "fe3", "fe1"})
	if !errors.Is(err, errkind.FailedPrecondition) || !strings.Contains(err.Error(), "fe2, fe3") {
		t.Errorf("err = %v, want FailedPrecondition naming fe2, fe3", err)
	}
	if _, err := f.stopTargets("dev", nil); !errors.Is(err, errkind.FailedPrecondition) {
		t.Errorf("no agent connected: err = %v", err)
	}
}
