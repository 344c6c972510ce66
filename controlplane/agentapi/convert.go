package agentapi

import (
	"github.com/cutover-dev/cutover/controlplane/fleet"
	"github.com/cutover-dev/cutover/controlplane/store"
	"github.com/cutover-dev/cutover/controlplane/transfer"
	"github.com/cutover-dev/cutover/pkg/chunkwire"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

func helloFromProto(h *cutoverv1.AgentHello) fleet.Hello {
	return fleet.Hello{
		Name:         h.GetName(),
		Environment:  h.GetEnvironment(),
		Labels:       h.GetLabels(),
		Applications: applicationsFromProto(h.GetStatus().GetApplications()),
	}
}

func applicationsFromProto(apps []*cutoverv1.AgentApplication) []store.AgentApplication {
	var out []store.AgentApplication
	for _, a := range apps {
		out = append(out, store.AgentApplication{
			Name:             a.GetName(),
			RunningReleaseID: a.GetRunningReleaseId(),
			StagedReleaseIDs: a.GetStagedReleaseIds(),
		})
	}
	return out
}

var outcomes = map[cutoverv1.CommandOutcome]fleet.Outcome{
	cutoverv1.CommandOutcome_COMMAND_OUTCOME_PROGRESS: fleet.Progress,
	cutoverv1.CommandOutcome_COMMAND_OUTCOME_DONE:     fleet.Done,
	cutoverv1.CommandOutcome_COMMAND_OUTCOME_FAILED:   fleet.CommandFailed,
}

func reportFromProto(r *cutoverv1.CommandReport) fleet.Report {
	out := fleet.Report{
		CommandID:        r.GetCommandId(),
		DeploymentID:     r.GetDeploymentId(),
		Outcome:          outcomes[r.GetOutcome()],
		Error:            r.GetError(),
		ReleaseBytes:     r.GetReleaseBytes(),
		TransferredBytes: r.GetTransferredBytes(),
		SwappedBack:      r.GetSwappedBack(),
	}
	if r.GetSwapTime() != nil {
		out.SwapTime = r.GetSwapTime().AsTime()
	}
	if out.Outcome == 0 { // unspecified: not a result
		out.Outcome = fleet.Progress
	}
	return out
}

func refsToProto(rs []fleet.ReleaseRef) []*cutoverv1.ReleaseRef {
	var out []*cutoverv1.ReleaseRef
	for _, r := range rs {
		out = append(out, &cutoverv1.ReleaseRef{Application: r.Application, ReleaseId: r.ReleaseID})
	}
	return out
}

func commandToProto(c fleet.Command) *cutoverv1.ConnectResponse {
	switch c.Kind {
	case fleet.Stage:
		return &cutoverv1.ConnectResponse{Command: &cutoverv1.ConnectResponse_Stage{Stage: &cutoverv1.StageCommand{
			CommandId: c.ID, DeploymentId: c.DeploymentID, Releases: refsToProto(c.Releases)}}}
	case fleet.Activate:
		return &cutoverv1.ConnectResponse{Command: &cutoverv1.ConnectResponse_Activate{Activate: &cutoverv1.ActivateCommand{
			CommandId: c.ID, DeploymentId: c.DeploymentID, Releases: refsToProto(c.Releases)}}}
	case fleet.Rollback:
		return &cutoverv1.ConnectResponse{Command: &cutoverv1.ConnectResponse_Rollback{Rollback: &cutoverv1.RollbackCommand{
			CommandId: c.ID, DeploymentId: c.DeploymentID, Applications: c.Applications}}}
	case fleet.Drop:
		return &cutoverv1.ConnectResponse{Command: &cutoverv1.ConnectResponse_Drop{Drop: &cutoverv1.DropCommand{
			CommandId: c.ID, DeploymentId: c.DeploymentID, Releases: refsToProto(c.Releases)}}}
	}
	panic("agentapi: unknown command kind " + string(c.Kind)) // the fleet only makes the four kinds
}

// frameOf encodes a batch of chunks for the wire, without copying their data.
func frameOf(batch []transfer.Chunk) *chunkwire.Frame {
	cs := make([]chunkwire.Chunk, len(batch))
	for i, c := range batch {
		cs[i] = chunkwire.Chunk{ID: c.ID, Data: c.Data, Compressed: c.Compressed}
	}
	return chunkwire.NewFrame(cs)
}
