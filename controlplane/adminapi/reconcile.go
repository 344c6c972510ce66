package adminapi

import (
	"context"

	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// ReconcileEnvironment brings the drifted front-ends of an environment back
// to the releases it records.
func (s *Server) ReconcileEnvironment(ctx context.Context, req *cutoverv1.ReconcileEnvironmentRequest) (*cutoverv1.ReconcileEnvironmentResponse, error) {
	if err := required("environment", req.GetEnvironment()); err != nil {
		return nil, err
	}
	res, err := s.deps.Reconcile(ctx, actor(ctx), req.GetEnvironment(), req.GetReason())
	if err != nil {
		return nil, err
	}
	out := &cutoverv1.ReconcileEnvironmentResponse{Agents: res.Agents, NotConnected: res.NotConnected}
	if res.Deployment != nil {
		out.Deployment = deploymentToProto(res.Deployment)
	}
	return out, nil
}
