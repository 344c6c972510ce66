package storecodec

import (
	"fmt"

	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/pkg/errkind"
	storagev1 "github.com/cutover-dev/cutover/proto/cutover/storage/v1"
)

// enum maps a model string type to a storage/v1 enum and back; the empty
// string is the enum's zero value (UNSPECIFIED).
type enum[S ~string, E ~int32] struct {
	what string
	to   map[S]E
	from map[E]S
}

func newEnum[S ~string, E ~int32](what string, pairs map[S]E) enum[S, E] {
	e := enum[S, E]{what: what, to: map[S]E{"": 0}, from: map[E]S{0: ""}}
	for s, v := range pairs {
		e.to[s], e.from[v] = v, s
	}
	return e
}

func (e enum[S, E]) encode(s S) (E, error) {
	v, ok := e.to[s]
	if !ok {
		return 0, fmt.Errorf("%s %q has no stored value (add it to proto/cutover/storage/v1 and storecodec): %w", e.what, s, errkind.InvalidArgument)
	}
	return v, nil
}

func (e enum[S, E]) decode(v E) (S, error) {
	s, ok := e.from[v]
	if !ok {
		return "", fmt.Errorf("unknown %s %d (written by a newer controller?): %w", e.what, v, errkind.DataLoss)
	}
	return s, nil
}

var deploymentStates = newEnum("deployment state", map[model.DeploymentState]storagev1.DeploymentState{
	model.Planned:    storagev1.DeploymentState_DEPLOYMENT_STATE_PLANNED,
	model.Preparing:  storagev1.DeploymentState_DEPLOYMENT_STATE_PREPARING,
	model.Prepared:   storagev1.DeploymentState_DEPLOYMENT_STATE_PREPARED,
	model.Activating: storagev1.DeploymentState_DEPLOYMENT_STATE_ACTIVATING,
	model.Deployed:   storagev1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED,
	model.Failed:     storagev1.DeploymentState_DEPLOYMENT_STATE_FAILED,
	model.Aborted:    storagev1.DeploymentState_DEPLOYMENT_STATE_ABORTED,
	model.Expired:    storagev1.DeploymentState_DEPLOYMENT_STATE_EXPIRED,
	model.RolledBack: storagev1.DeploymentState_DEPLOYMENT_STATE_ROLLED_BACK,
})

var agentStates = newEnum("agent state", map[model.AgentState]storagev1.AgentState{
	model.AgentPending:    storagev1.AgentState_AGENT_STATE_PENDING,
	model.AgentStaging:    storagev1.AgentState_AGENT_STATE_STAGING,
	model.AgentStaged:     storagev1.AgentState_AGENT_STATE_STAGED,
	model.AgentActivating: storagev1.AgentState_AGENT_STATE_ACTIVATING,
	model.AgentActive:     storagev1.AgentState_AGENT_STATE_ACTIVE,
	model.AgentFailed:     storagev1.AgentState_AGENT_STATE_FAILED,
	model.AgentRolledBack: storagev1.AgentState_AGENT_STATE_ROLLED_BACK,
	model.AgentArmed:      storagev1.AgentState_AGENT_STATE_ARMED,
})

var stage2Steps = newEnum("stage 2 step", map[model.Stage2Step]storagev1.Stage2Step{
	model.StepArm:          storagev1.Stage2Step_STAGE2_STEP_ARM,
	model.StepBefore:       storagev1.Stage2Step_STAGE2_STEP_BEFORE_ACTIVATE,
	model.StepSQL:          storagev1.Stage2Step_STAGE2_STEP_SQL,
	model.StepCommit:       storagev1.Stage2Step_STAGE2_STEP_COMMIT,
	model.StepAfter:        storagev1.Stage2Step_STAGE2_STEP_AFTER_ACTIVATE,
	model.StepContract:     storagev1.Stage2Step_STAGE2_STEP_CONTRACT,
	model.StepUndoContract: storagev1.Stage2Step_STAGE2_STEP_UNDO_CONTRACT,
	model.StepUndoExpand:   storagev1.Stage2Step_STAGE2_STEP_UNDO_EXPAND,
})
