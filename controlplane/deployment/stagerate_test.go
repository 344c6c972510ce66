package deployment

import (
	"testing"

	"github.com/cutover-dev/cutover/controlplane/fleet"
	"github.com/cutover-dev/cutover/controlplane/model"
)

// TestCommandsCarryStageRate checks that the stage and arm commands (and
// only they) carry the stage_rate the deployment took from its environment.
func TestCommandsCarryStageRate(t *testing.T) {
	d := &model.Deployment{ID: "d-1", StageRate: 50 << 20}
	if got := stageCommand(d, "d-1.stage.fe1"); got.StageRate != 50<<20 || got.Kind != fleet.Stage || got.ID != "d-1.stage.fe1" {
		t.Errorf("stage command = %+v, want stage_rate %d", got, 50<<20)
	}
	a := &model.DeploymentAgent{Name: "fe1", Command: "d-1.x.fe1"}
	for _, tt := range []struct {
		step model.Stage2Step
		want int64
	}{
		{model.StepArm, 50 << 20},
		{model.StepCommit, 0},
	} {
		d.Step = tt.step
		if got := commandFor(d, a).StageRate; got != tt.want {
			t.Errorf("step %s: StageRate = %d, want %d", tt.step, got, tt.want)
		}
	}
}
