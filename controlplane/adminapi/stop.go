package adminapi

import (
	"context"

	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// StopApplication stops an application on purpose on front-ends of an
// environment; the fleet checks the agents and asks each of them.
func (s *Server) StopApplication(ctx context.Context, req *cutoverv1.StopApplicationRequest) (*cutoverv1.StopApplicationResponse, error) {
	for _, f := range []struct{ name, value string }{
		{"environment", req.GetEnvironment()}, {"application", req.GetApplication()}, {"reason", req.GetReason()},
	} {
		if err := required(f.name, f.value); err != nil {
			return nil, err
		}
	}
	res, err := s.fleet.StopApplication(ctx, req.GetEnvironment(), req.GetApplication(), req.GetAgents())
	if err != nil {
		return nil, err
	}
	return stopResultsToProto(res), nil
}
