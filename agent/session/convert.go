package session

import (
	"google.golang.org/protobuf/types/known/timestamppb"

	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

func releasesFromProto(refs []*cutoverv1.ReleaseRef) []Release {
	out := make([]Release, len(refs))
	for i, r := range refs {
		out[i] = Release{Application: r.GetApplication(), ID: r.GetReleaseId()}
	}
	return out
}

// commandFromProto converts a controller message; ok is false for a message
// this agent does not know (a newer controller).
func commandFromProto(m *cutoverv1.ConnectResponse) (c Command, ok bool) {
	switch x := m.GetCommand().(type) {
	case *cutoverv1.ConnectResponse_Stage:
		return Command{Kind: KindStage, ID: x.Stage.GetCommandId(), Deployment: x.Stage.GetDeploymentId(),
			Releases: releasesFromProto(x.Stage.GetReleases())}, true
	case *cutoverv1.ConnectResponse_Activate:
		return Command{Kind: KindActivate, ID: x.Activate.GetCommandId(), Deployment: x.Activate.GetDeploymentId(),
			Releases: releasesFromProto(x.Activate.GetReleases())}, true
	case *cutoverv1.ConnectResponse_Rollback:
		return Command{Kind: KindRollback, ID: x.Rollback.GetCommandId(), Deployment: x.Rollback.GetDeploymentId(),
			Applications: x.Rollback.GetApplications()}, true
	case *cutoverv1.ConnectResponse_Drop:
		return Command{Kind: KindDrop, ID: x.Drop.GetCommandId(), Deployment: x.Drop.GetDeploymentId(),
			Releases: releasesFromProto(x.Drop.GetReleases())}, true
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
		CommandId: r.CommandID, DeploymentId: r.Deployment, Outcome: outcomes[r.Outcome], Error: r.Error,
		ReleaseBytes: r.ReleaseBytes, TransferredBytes: r.TransferredBytes, ReusedBytes: r.ReusedBytes, SwappedBack: r.SwappedBack,
	}
	if !r.SwapTime.IsZero() {
		p.SwapTime = timestamppb.New(r.SwapTime)
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
