package session

import (
	"slices"

	"github.com/cutover-dev/cutover/agent/peer"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cutover-dev/cutover/pkg/appspec"
	"github.com/cutover-dev/cutover/pkg/journalkey"

	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

var hookKinds = map[appspec.HookKind]cutoverv1.HookKind{
	appspec.BeforeActivate: cutoverv1.HookKind_HOOK_KIND_BEFORE_ACTIVATE,
	appspec.Validate:       cutoverv1.HookKind_HOOK_KIND_VALIDATE,
	appspec.AfterActivate:  cutoverv1.HookKind_HOOK_KIND_AFTER_ACTIVATE,
}

func hookRefsFromProto(refs []*cutoverv1.HookRef) []appspec.HookRef {
	var out []appspec.HookRef
	for _, r := range refs {
		for k, v := range hookKinds {
			if v == r.GetKind() {
				out = append(out, appspec.HookRef{Application: r.GetApplication(), Kind: k, Index: int(r.GetIndex())})
			}
		}
	}
	return out
}

func releasesFromProto(refs []*cutoverv1.ReleaseRef) []Release {
	out := make([]Release, len(refs))
	for i, r := range refs {
		out[i] = Release{Application: r.GetApplication(), ID: r.GetReleaseId()}
	}
	return out
}

// Revision is the agent protocol revision this agent speaks, said in its
// hello (AgentHello.revision): 1, it reads rollback_attempt.
const Revision = 1

// commandFromProto converts a controller message; ok is false for a message
// this agent does not know (a newer controller).
func commandFromProto(m *cutoverv1.ConnectResponse) (c Command, ok bool) {
	c, ok = commandOf(m)
	c.Epoch = m.GetEpoch()
	if c.RollbackAttempt == 0 {
		// A controller of the previous release packs the attempt into the
		// id ("<id>~rollback.<n>"); this is the one place the agent reads
		// that form. Drop it once no controller of that release remains.
		c.Deployment, c.RollbackAttempt = journalkey.Unpack(c.Deployment)
	}
	return c, ok
}

func commandOf(m *cutoverv1.ConnectResponse) (c Command, ok bool) {
	switch x := m.GetCommand().(type) {
	case *cutoverv1.ConnectResponse_Stage:
		return Command{Kind: KindStage, ID: x.Stage.GetCommandId(), Deployment: x.Stage.GetDeploymentId(),
			Releases: releasesFromProto(x.Stage.GetReleases()), StageRate: x.Stage.GetStageRate(), Peers: peersFromProto(x.Stage.GetPeers()),
			Swarm: swarmFromProto(x.Stage.GetSwarm())}, true
	case *cutoverv1.ConnectResponse_Arm:
		return Command{Kind: KindArm, ID: x.Arm.GetCommandId(), Deployment: x.Arm.GetDeploymentId(),
			RollbackAttempt: int(x.Arm.GetRollbackAttempt()),
			Releases:        releasesFromProto(x.Arm.GetReleases()), VerifyOnly: x.Arm.GetVerifyOnly(), StageRate: x.Arm.GetStageRate(),
			Peers: peersFromProto(x.Arm.GetPeers())}, true
	case *cutoverv1.ConnectResponse_Commit:
		return Command{Kind: KindCommit, ID: x.Commit.GetCommandId(), Deployment: x.Commit.GetDeploymentId(),
			RollbackAttempt: int(x.Commit.GetRollbackAttempt()),
			Releases:        releasesFromProto(x.Commit.GetReleases()), Hooks: hookRefsFromProto(x.Commit.GetValidate()),
			KeepReleases: int(x.Commit.GetKeepReleases()), Hold: x.Commit.GetHold()}, true
	case *cutoverv1.ConnectResponse_Finish:
		return Command{Kind: KindFinish, ID: x.Finish.GetCommandId(), Deployment: x.Finish.GetDeploymentId(),
			RollbackAttempt: int(x.Finish.GetRollbackAttempt()), Abort: x.Finish.GetAbort()}, true
	case *cutoverv1.ConnectResponse_Disarm:
		return Command{Kind: KindDisarm, ID: x.Disarm.GetCommandId(), Deployment: x.Disarm.GetDeploymentId(),
			RollbackAttempt: int(x.Disarm.GetRollbackAttempt())}, true
	case *cutoverv1.ConnectResponse_Hooks:
		return Command{Kind: KindHooks, ID: x.Hooks.GetCommandId(), Deployment: x.Hooks.GetDeploymentId(),
			RollbackAttempt: int(x.Hooks.GetRollbackAttempt()),
			Releases:        releasesFromProto(x.Hooks.GetReleases()), Hooks: hookRefsFromProto(x.Hooks.GetHooks())}, true
	case *cutoverv1.ConnectResponse_Rollback:
		return Command{Kind: KindRollback, ID: x.Rollback.GetCommandId(), Deployment: x.Rollback.GetDeploymentId(),
			Applications: x.Rollback.GetApplications()}, true
	case *cutoverv1.ConnectResponse_Drop:
		return Command{Kind: KindDrop, ID: x.Drop.GetCommandId(), Deployment: x.Drop.GetDeploymentId(),
			Releases: releasesFromProto(x.Drop.GetReleases())}, true
	case *cutoverv1.ConnectResponse_StopApp:
		return Command{Kind: KindStopApp, ID: x.StopApp.GetCommandId(), Applications: []string{x.StopApp.GetApplication()}}, true
	}
	return Command{}, false
}

var outcomes = map[Outcome]cutoverv1.CommandOutcome{
	Progress: cutoverv1.CommandOutcome_COMMAND_OUTCOME_PROGRESS,
	Done:     cutoverv1.CommandOutcome_COMMAND_OUTCOME_DONE,
	Failed:   cutoverv1.CommandOutcome_COMMAND_OUTCOME_FAILED,
}

func reportToProto(r Report) *cutoverv1.ConnectRequest {
	p := &cutoverv1.CommandReport{
		CommandId: r.CommandID, DeploymentId: r.Deployment, RollbackAttempt: uint32(r.RollbackAttempt), Outcome: outcomes[r.Outcome], Error: r.Error,
		ReleaseBytes: r.ReleaseBytes, TransferredBytes: r.TransferredBytes, ReusedBytes: r.ReusedBytes, SwappedBack: r.SwappedBack,
		RunId: r.Run, Ready: r.Ready,
	}
	if r.Overlap > 0 {
		p.Overlap = durationpb.New(r.Overlap)
	}
	if !r.SwapTime.IsZero() {
		p.SwapTime = timestamppb.New(r.SwapTime)
	}
	for _, h := range r.Hooks {
		p.Hooks = append(p.Hooks, &cutoverv1.HookResult{Application: h.Ref.Application, Kind: hookKinds[h.Ref.Kind],
			Index: int32(h.Ref.Index), Command: h.Command, ExitCode: int32(h.ExitCode),
			Duration: durationpb.New(h.Duration), Output: h.Output, Error: h.Error})
	}
	return &cutoverv1.ConnectRequest{Msg: &cutoverv1.ConnectRequest_Report{Report: p}}
}

func statusToProto(apps []AppStatus) *cutoverv1.AgentStatus {
	s := &cutoverv1.AgentStatus{}
	for _, a := range apps {
		s.Applications = append(s.Applications, &cutoverv1.AgentApplication{
			Name: a.Name, RunningReleaseId: a.Running, StagedReleaseIds: a.Staged})
	}
	return s
}

func peersFromProto(ps []*cutoverv1.Peer) []peer.Peer {
	var out []peer.Peer
	for _, p := range ps {
		out = append(out, peer.Peer{Name: p.GetName(), Address: p.GetAddress(), Zone: p.GetZone(), Holds: p.GetHolds()})
	}
	return out
}

// swarmFromProto returns the agent's part in a swarm; nil when unset or
// without slices.
func swarmFromProto(w *cutoverv1.Swarm) *peer.Swarm {
	if w.GetSlices() <= 0 {
		return nil
	}
	return &peer.Swarm{Slices: int(w.GetSlices()), Slice: int(w.GetSlice()), Owners: slices.Clone(w.GetOwners())}
}
