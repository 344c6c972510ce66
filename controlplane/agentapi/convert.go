package agentapi

import (
	"github.com/cutover-dev/cutover/controlplane/fleet"
	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/controlplane/transfer"
	"github.com/cutover-dev/cutover/pkg/chunkwire"
	"github.com/cutover-dev/cutover/pkg/journalkey"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

func helloFromProto(h *cutoverv1.AgentHello) fleet.Hello {
	return fleet.Hello{
		Name:         h.GetName(),
		Environment:  h.GetEnvironment(),
		Labels:       h.GetLabels(),
		Applications: applicationsFromProto(h.GetStatus().GetApplications()),
		PeerAddress:  h.GetPeerAddress(),
	}
}

func swarmToProto(w *fleet.Swarm) *cutoverv1.Swarm {
	if w == nil {
		return nil
	}
	return &cutoverv1.Swarm{Slices: int32(w.Slices), Slice: int32(w.Slice), Owners: w.Owners}
}

func peersToProto(ps []fleet.Peer) []*cutoverv1.Peer {
	var out []*cutoverv1.Peer
	for _, p := range ps {
		out = append(out, &cutoverv1.Peer{Name: p.Name, Address: p.Address, Zone: p.Zone, Holds: p.Holds})
	}
	return out
}

func applicationsFromProto(apps []*cutoverv1.AgentApplication) []model.AgentApplication {
	var out []model.AgentApplication
	for _, a := range apps {
		out = append(out, model.AgentApplication{
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
	id, attempt := r.GetDeploymentId(), int(r.GetRollbackAttempt())
	if attempt == 0 { // an agent of revision 0 packs the attempt into the id
		id, attempt = journalkey.Unpack(id)
	}
	out := fleet.Report{
		CommandID:        r.GetCommandId(),
		DeploymentID:     id,
		RollbackAttempt:  attempt,
		Outcome:          outcomes[r.GetOutcome()],
		Error:            r.GetError(),
		ReleaseBytes:     r.GetReleaseBytes(),
		TransferredBytes: r.GetTransferredBytes(),
		Run:              r.GetRunId(),
		ReusedBytes:      r.GetReusedBytes(),
		SwappedBack:      r.GetSwappedBack(),
		Ready:            r.GetReady(),
	}
	if d := r.GetOverlap(); d.IsValid() && d.AsDuration() > 0 { // an agent's nonsense is not shown
		out.Overlap = d.AsDuration()
	}
	if r.GetSwapTime() != nil {
		out.SwapTime = r.GetSwapTime().AsTime()
	}
	for _, h := range r.GetHooks() {
		out.Hooks = append(out.Hooks, model.HookResult{
			HookRef: model.HookRef{Application: h.GetApplication(), Kind: hookKindNames[h.GetKind()], Index: int(h.GetIndex())},
			Command: h.GetCommand(), ExitCode: int(h.GetExitCode()), Duration: h.GetDuration().AsDuration(),
			Output: h.GetOutput(), Error: h.GetError()})
	}
	if out.Outcome == 0 { // unspecified: not a result
		out.Outcome = fleet.Progress
	}
	return out
}

// hookKindNames maps the proto hook kinds to the names of cutover.yaml.
var hookKindNames = map[cutoverv1.HookKind]string{
	cutoverv1.HookKind_HOOK_KIND_BEFORE_ACTIVATE: "before_activate",
	cutoverv1.HookKind_HOOK_KIND_VALIDATE:        "validate",
	cutoverv1.HookKind_HOOK_KIND_AFTER_ACTIVATE:  "after_activate",
}

func hookRefsToProto(refs []model.HookRef) []*cutoverv1.HookRef {
	var out []*cutoverv1.HookRef
	for _, r := range refs {
		for k, name := range hookKindNames {
			if name == r.Kind {
				out = append(out, &cutoverv1.HookRef{Application: r.Application, Kind: k, Index: int32(r.Index)})
			}
		}
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

// attemptsRevision is the agent protocol revision (AgentHello.revision)
// from which an agent reads rollback_attempt. An agent of an older
// revision (the previous release: no revision in its hello) is sent, and
// echoes, the packed deployment_id "<id>~rollback.<n>" of pkg/journalkey;
// this file, the one edge that meets it, packs and unpacks, so that the
// fleet and the deployments never see that form. Drop the packing with
// pkg/journalkey, once every agent speaks revision 1.
const attemptsRevision = 1

// deploymentOf returns what a command of c's deployment and attempt
// carries for an agent of protocol revision rev.
func deploymentOf(c fleet.Command, rev uint32) (id string, attempt uint32) {
	if rev < attemptsRevision {
		return journalkey.Pack(c.DeploymentID, c.RollbackAttempt), 0
	}
	return c.DeploymentID, uint32(c.RollbackAttempt)
}

// commandToProto converts c for an agent of protocol revision rev.
func commandToProto(c fleet.Command, rev uint32) *cutoverv1.ConnectResponse {
	dep, attempt := deploymentOf(c, rev)
	switch c.Kind {
	case fleet.Stage:
		return &cutoverv1.ConnectResponse{Command: &cutoverv1.ConnectResponse_Stage{Stage: &cutoverv1.StageCommand{
			CommandId: c.ID, DeploymentId: dep, Releases: refsToProto(c.Releases), StageRate: c.StageRate,
			Peers: peersToProto(c.Peers), Swarm: swarmToProto(c.Swarm)}}}
	case fleet.Arm:
		return &cutoverv1.ConnectResponse{Command: &cutoverv1.ConnectResponse_Arm{Arm: &cutoverv1.ArmCommand{
			CommandId: c.ID, DeploymentId: dep, Releases: refsToProto(c.Releases), VerifyOnly: c.VerifyOnly,
			StageRate: c.StageRate, RollbackAttempt: attempt, Peers: peersToProto(c.Peers)}}}
	case fleet.Commit:
		return &cutoverv1.ConnectResponse{Command: &cutoverv1.ConnectResponse_Commit{Commit: &cutoverv1.CommitCommand{
			CommandId: c.ID, DeploymentId: dep, Releases: refsToProto(c.Releases), Validate: hookRefsToProto(c.Hooks),
			KeepReleases: c.KeepReleases, Hold: c.Hold, RollbackAttempt: attempt}}}
	case fleet.Finish:
		return &cutoverv1.ConnectResponse{Command: &cutoverv1.ConnectResponse_Finish{Finish: &cutoverv1.FinishCommand{
			CommandId: c.ID, DeploymentId: dep, Abort: c.Abort, RollbackAttempt: attempt}}}
	case fleet.Disarm:
		return &cutoverv1.ConnectResponse{Command: &cutoverv1.ConnectResponse_Disarm{Disarm: &cutoverv1.DisarmCommand{
			CommandId: c.ID, DeploymentId: dep, RollbackAttempt: attempt}}}
	case fleet.Hooks:
		return &cutoverv1.ConnectResponse{Command: &cutoverv1.ConnectResponse_Hooks{Hooks: &cutoverv1.HooksCommand{
			CommandId: c.ID, DeploymentId: dep, Releases: refsToProto(c.Releases), Hooks: hookRefsToProto(c.Hooks), RollbackAttempt: attempt}}}
	case fleet.Rollback:
		return &cutoverv1.ConnectResponse{Command: &cutoverv1.ConnectResponse_Rollback{Rollback: &cutoverv1.RollbackCommand{
			CommandId: c.ID, DeploymentId: dep, Applications: c.Applications}}}
	case fleet.Drop:
		return &cutoverv1.ConnectResponse{Command: &cutoverv1.ConnectResponse_Drop{Drop: &cutoverv1.DropCommand{
			CommandId: c.ID, DeploymentId: dep, Releases: refsToProto(c.Releases)}}}
	case fleet.StopApp:
		var app string
		if len(c.Applications) > 0 {
			app = c.Applications[0]
		}
		return &cutoverv1.ConnectResponse{Command: &cutoverv1.ConnectResponse_StopApp{StopApp: &cutoverv1.StopAppCommand{
			CommandId: c.ID, Application: app}}}
	}
	panic("agentapi: unknown command kind " + string(c.Kind)) // the fleet only makes the kinds above
}

// frameOf encodes a batch of chunks for the wire, without copying their data.
func frameOf(batch []transfer.Chunk) *chunkwire.Frame {
	cs := make([]chunkwire.Chunk, len(batch))
	for i, c := range batch {
		cs[i] = chunkwire.Chunk{ID: c.ID, Data: c.Data, Compressed: c.Compressed}
	}
	return chunkwire.NewFrame(cs)
}
