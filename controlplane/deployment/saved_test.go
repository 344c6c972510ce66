package deployment

import (
	"fmt"
	"slices"
	"testing"

	"github.com/cutover-dev/cutover/controlplane/fleet"
	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/controlplane/store"
)

// TestSavedCountedOncePerDeployment drives handleReport on a real store: an
// agent's reused bytes are counted on its first DONE of the deployment
// only, whether it answers the same stage again (a command resent after a
// controller restart, here a second Service on the same store), or arms
// after staging; an agent that first stages at arm (it joined after
// prepare) is counted there.
func TestSavedCountedOncePerDeployment(t *testing.T) {
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	err = st.Update(func(tx model.Tx) error {
		if err := tx.PutEnvironment(&model.Environment{Name: "prod"}); err != nil {
			return err
		}
		apps := []model.DeploymentApplication{{Name: "hello", ReleaseID: "r1"}}
		// "waits" never answers, so neither deployment moves on.
		if err := tx.PutDeployment(&model.Deployment{ID: "d-1", Environment: "prod", State: model.Preparing, Applications: apps,
			Agents: []model.DeploymentAgent{{Name: "a", State: model.AgentPending, Command: "d-1.stage.a"}, {Name: "waits", State: model.AgentPending, Command: "d-1.stage.waits"}}}); err != nil {
			return err
		}
		return tx.PutDeployment(&model.Deployment{ID: "d-2", Environment: "prod", State: model.Activating, Step: model.StepArm, Applications: apps,
			Agents: []model.DeploymentAgent{
				{Name: "a", State: model.AgentStaged, Command: "d-2.arm.a", SavedCounted: true}, // staged in stage 1
				{Name: "late", State: model.AgentPending, Command: "d-2.arm.late"},              // joined after prepare
				{Name: "waits", State: model.AgentStaged, Command: "d-2.arm.waits", SavedCounted: true}}})
	})
	if err != nil {
		t.Fatal(err)
	}
	var counted []string
	service := func() *Service {
		f, err := fleet.New(fleet.Config{Store: st})
		if err != nil {
			t.Fatal(err)
		}
		s, err := New(Config{Store: st, Fleet: f, Saved: func(env string, n int64) { counted = append(counted, fmt.Sprint(env, " ", n)) }})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	report := func(s *Service, d, agent, cmd string, outcome fleet.Outcome, reused int64) {
		t.Helper()
		if err := s.handleReport(fleet.Report{Agent: agent, DeploymentID: d, CommandID: cmd, Outcome: outcome, ReleaseBytes: 100, ReusedBytes: reused}); err != nil {
			t.Fatal(err)
		}
	}
	steps := []struct {
		name string
		do   func(s *Service) *Service
		want []string
	}{
		{"progress counts nothing", func(s *Service) *Service { report(s, "d-1", "a", "d-1.stage.a", fleet.Progress, 0); return s }, nil},
		{"stage DONE counts", func(s *Service) *Service { report(s, "d-1", "a", "d-1.stage.a", fleet.Done, 60); return s }, []string{"prod 60"}},
		{"the same DONE again", func(s *Service) *Service { report(s, "d-1", "a", "d-1.stage.a", fleet.Done, 100); return s }, []string{"prod 60"}},
		{"after a restart, a DONE to the resent stage", func(*Service) *Service {
			s := service()
			report(s, "d-1", "a", "d-1.stage.a", fleet.Done, 100)
			return s
		}, []string{"prod 60"}},
		{"arm after stage 1", func(s *Service) *Service { report(s, "d-2", "a", "d-2.arm.a", fleet.Done, 100); return s }, []string{"prod 60"}},
		{"arm that stages", func(s *Service) *Service { report(s, "d-2", "late", "d-2.arm.late", fleet.Done, 30); return s }, []string{"prod 60", "prod 30"}},
	}
	s := service()
	for _, step := range steps {
		s = step.do(s)
		if !slices.Equal(counted, step.want) {
			t.Fatalf("%s: counted %q, want %q", step.name, counted, step.want)
		}
	}
}
