// Package adminapi serves AdminService, the operators' API. Handlers
// validate the request's shape, call the catalog, the deployment service or
// the fleet, and convert (convert.go); the rules live in those packages.
// Errors are domain errors; the server's rpcerr interceptor turns them into
// statuses.
package adminapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cutover-dev/cutover/controlplane/audit"
	"github.com/cutover-dev/cutover/controlplane/auth"
	"github.com/cutover-dev/cutover/controlplane/catalog"
	"github.com/cutover-dev/cutover/controlplane/deployment"
	"github.com/cutover-dev/cutover/controlplane/fleet"
	"github.com/cutover-dev/cutover/pkg/appspec"
	"github.com/cutover-dev/cutover/pkg/errkind"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// Config holds what the server needs.
type Config struct {
	Catalog     *catalog.Catalog
	Deployments *deployment.Service
	Fleet       *fleet.Fleet
	// Auth issues and revokes tokens and agent certificates.
	Auth *auth.Service
	// Audit is the audit log that ListAuditEvents reads.
	Audit *audit.Log
	Clock func() time.Time
}

// Server implements cutoverv1.AdminServiceServer.
type Server struct {
	cutoverv1.UnsafeAdminServiceServer
	cat   *catalog.Catalog
	deps  *deployment.Service
	fleet *fleet.Fleet
	auth  *auth.Service
	audit *audit.Log
	clock func() time.Time
}

var _ cutoverv1.AdminServiceServer = (*Server)(nil)

// New returns a server.
func New(cfg Config) *Server {
	s := &Server{cat: cfg.Catalog, deps: cfg.Deployments, fleet: cfg.Fleet, auth: cfg.Auth, audit: cfg.Audit, clock: cfg.Clock}
	if s.clock == nil {
		s.clock = time.Now
	}
	return s
}

// actor returns who asks: the subject controlplane/guard authenticated
// (from a token or a certificate, never from what the caller says).
func actor(ctx context.Context) string { return auth.Actor(ctx) }

func required(field, value string) error {
	if value == "" {
		return fmt.Errorf("%s is required: %w", field, errkind.InvalidArgument)
	}
	return nil
}

// CreateEnvironment creates an environment.
func (s *Server) CreateEnvironment(ctx context.Context, req *cutoverv1.CreateEnvironmentRequest) (*cutoverv1.Environment, error) {
	if req.GetEnvironment() == nil {
		return nil, required("environment", "")
	}
	e, err := s.cat.CreateEnvironment(ctx, environmentFromProto(req.GetEnvironment()), catalog.EnvOptions{SkipDatabaseCheck: req.GetSkipDatabaseCheck()})
	if err != nil {
		return nil, err
	}
	return environmentToProto(e, s.clock()), nil
}

// UpdateEnvironment changes the fields named in update_mask.
func (s *Server) UpdateEnvironment(ctx context.Context, req *cutoverv1.UpdateEnvironmentRequest) (*cutoverv1.Environment, error) {
	if req.GetEnvironment() == nil {
		return nil, required("environment", "")
	}
	e, err := s.cat.UpdateEnvironment(ctx, environmentFromProto(req.GetEnvironment()), req.GetUpdateMask().GetPaths(),
		catalog.EnvOptions{SkipDatabaseCheck: req.GetSkipDatabaseCheck()})
	if err != nil {
		return nil, err
	}
	return environmentToProto(e, s.clock()), nil
}

// GetEnvironment returns one environment.
func (s *Server) GetEnvironment(ctx context.Context, req *cutoverv1.GetEnvironmentRequest) (*cutoverv1.Environment, error) {
	e, err := s.cat.Environment(ctx, req.GetName())
	if err != nil {
		return nil, err
	}
	return environmentToProto(e, s.clock()), nil
}

// ListEnvironments returns every environment.
func (s *Server) ListEnvironments(ctx context.Context, req *cutoverv1.ListEnvironmentsRequest) (*cutoverv1.ListEnvironmentsResponse, error) {
	es, err := s.cat.Environments(ctx)
	if err != nil {
		return nil, err
	}
	out := &cutoverv1.ListEnvironmentsResponse{}
	for _, e := range es {
		out.Environments = append(out.Environments, environmentToProto(e, s.clock()))
	}
	return out, nil
}

// RegisterApplication registers (or re-registers) a source directory.
func (s *Server) RegisterApplication(ctx context.Context, req *cutoverv1.RegisterApplicationRequest) (*cutoverv1.Application, error) {
	a := req.GetApplication()
	if err := required("application.source_dir", a.GetSourceDir()); err != nil {
		return nil, err
	}
	if a.GetName() != "" {
		if err := appspec.ValidName(a.GetName()); err != nil {
			return nil, fmt.Errorf("application name: %w", err)
		}
	}
	v, err := s.cat.RegisterApplication(ctx, a.GetName(), a.GetSourceDir())
	if err != nil {
		return nil, err
	}
	return applicationToProto(v), nil
}

// GetApplication returns one application.
func (s *Server) GetApplication(ctx context.Context, req *cutoverv1.GetApplicationRequest) (*cutoverv1.Application, error) {
	v, err := s.cat.Application(ctx, req.GetName())
	if err != nil {
		return nil, err
	}
	return applicationToProto(v), nil
}

// ListApplications returns every application.
func (s *Server) ListApplications(ctx context.Context, req *cutoverv1.ListApplicationsRequest) (*cutoverv1.ListApplicationsResponse, error) {
	vs, err := s.cat.Applications(ctx)
	if err != nil {
		return nil, err
	}
	out := &cutoverv1.ListApplicationsResponse{}
	for _, v := range vs {
		out.Applications = append(out.Applications, applicationToProto(v))
	}
	return out, nil
}

// CreateDeployment plans a deployment.
func (s *Server) CreateDeployment(ctx context.Context, req *cutoverv1.CreateDeploymentRequest) (*cutoverv1.Deployment, error) {
	if err := required("environment", req.GetEnvironment()); err != nil {
		return nil, err
	}
	var apps []deployment.AppVersion
	for _, a := range req.GetApplications() {
		apps = append(apps, deployment.AppVersion{Name: a.GetName(), VersionLabel: a.GetVersionLabel()})
	}
	d, err := s.deps.Create(ctx, actor(ctx), req.GetEnvironment(), apps)
	if err != nil {
		return nil, err
	}
	return deploymentToProto(d), nil
}

// PrepareDeployment starts stage 1.
func (s *Server) PrepareDeployment(ctx context.Context, req *cutoverv1.PrepareDeploymentRequest) (*cutoverv1.Deployment, error) {
	if err := required("id", req.GetId()); err != nil {
		return nil, err
	}
	d, err := s.deps.Prepare(ctx, actor(ctx), req.GetId())
	if err != nil {
		return nil, err
	}
	return deploymentToProto(d), nil
}

// ContinueDeployment starts stage 2.
func (s *Server) ContinueDeployment(ctx context.Context, req *cutoverv1.ContinueDeploymentRequest) (*cutoverv1.Deployment, error) {
	if err := required("id", req.GetId()); err != nil {
		return nil, err
	}
	d, err := s.deps.Continue(ctx, actor(ctx), req.GetId(), continueOptions(req))
	if err != nil {
		return nil, err
	}
	return deploymentToProto(d), nil
}

// StartDeployment runs both stages back to back.
func (s *Server) StartDeployment(ctx context.Context, req *cutoverv1.StartDeploymentRequest) (*cutoverv1.Deployment, error) {
	if err := required("id", req.GetId()); err != nil {
		return nil, err
	}
	d, err := s.deps.Start(ctx, actor(ctx), req.GetId(), startOptions(req))
	if err != nil {
		return nil, err
	}
	return deploymentToProto(d), nil
}

// AbortDeployment aborts a deployment that has not started stage 2, or
// with force ends a stuck stage 2.
func (s *Server) AbortDeployment(ctx context.Context, req *cutoverv1.AbortDeploymentRequest) (*cutoverv1.Deployment, error) {
	if err := required("id", req.GetId()); err != nil {
		return nil, err
	}
	abort := s.deps.Abort
	if req.GetForce() {
		abort = s.deps.ForceAbort
	}
	d, err := abort(ctx, actor(ctx), req.GetId(), req.GetReason())
	if err != nil {
		return nil, err
	}
	return deploymentToProto(d), nil
}

// GetDeployment returns one deployment.
func (s *Server) GetDeployment(ctx context.Context, req *cutoverv1.GetDeploymentRequest) (*cutoverv1.Deployment, error) {
	if err := required("id", req.GetId()); err != nil {
		return nil, err
	}
	d, err := s.deps.Get(ctx, req.GetId())
	if err != nil {
		return nil, err
	}
	return deploymentToProto(d), nil
}

// ListDeployments returns deployments, newest first.
func (s *Server) ListDeployments(ctx context.Context, req *cutoverv1.ListDeploymentsRequest) (*cutoverv1.ListDeploymentsResponse, error) {
	ds, err := s.deps.List(ctx, req.GetEnvironment())
	if err != nil {
		return nil, err
	}
	out := &cutoverv1.ListDeploymentsResponse{}
	for _, d := range ds {
		out.Deployments = append(out.Deployments, deploymentToProto(d))
	}
	return out, nil
}

// GetDeploymentPlan returns the SQL script prepare generated and the
// migrations it applies.
func (s *Server) GetDeploymentPlan(ctx context.Context, req *cutoverv1.GetDeploymentPlanRequest) (*cutoverv1.DeploymentPlan, error) {
	if err := required("id", req.GetId()); err != nil {
		return nil, err
	}
	p, err := s.deps.SQLPlan(ctx, req.GetId())
	if err != nil {
		return nil, err
	}
	dl, err := s.deps.StageDeadlines(ctx, req.GetId())
	if err != nil {
		return nil, err
	}
	return planToProto(req.GetId(), p, dl), nil
}

// packageChunk is the most GetDeploymentPackage puts in one message.
const packageChunk = 1 << 20

// GetDeploymentPackage streams the file the package step of a deployment
// produced, in chunks.
func (s *Server) GetDeploymentPackage(req *cutoverv1.GetDeploymentPackageRequest, stream cutoverv1.AdminService_GetDeploymentPackageServer) error {
	if err := required("id", req.GetId()); err != nil {
		return err
	}
	p, err := s.deps.Package(stream.Context(), req.GetId())
	if err != nil {
		return err
	}
	f := p.Content
	defer f.Close()
	buf := make([]byte, packageChunk)
	first := &cutoverv1.DeploymentPackageChunk{Name: p.Name, SizeBytes: p.SizeBytes}
	for {
		n, err := io.ReadFull(f, buf)
		if n > 0 || first != nil {
			msg := first
			if msg == nil {
				msg = &cutoverv1.DeploymentPackageChunk{}
			}
			msg.Data, first = buf[:n], nil
			if serr := stream.Send(msg); serr != nil {
				return serr
			}
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read the package of %s: %w", req.GetId(), err)
		}
	}
}

// WatchDeployment streams the deployment at every change until it is
// settled: in a final state, with no rollback running. With
// changed_agents_only, each event after the first holds only the agents
// that changed since the previous one.
func (s *Server) WatchDeployment(req *cutoverv1.WatchDeploymentRequest, stream cutoverv1.AdminService_WatchDeploymentServer) error {
	if err := required("id", req.GetId()); err != nil {
		return err
	}
	ctx := stream.Context()
	ch, err := s.deps.Watch(ctx, req.GetId())
	if err != nil {
		return err
	}
	w := &watchStream{changedOnly: req.GetChangedAgentsOnly()}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case c := <-ch:
			ev, d := w.event(c)
			ev.Time = timestamppb.New(s.clock())
			if err := stream.Send(ev); err != nil {
				return err
			}
			if deployment.Settled(d) {
				return nil
			}
		}
	}
}

// ListAgents returns the known front-ends.
func (s *Server) ListAgents(ctx context.Context, req *cutoverv1.ListAgentsRequest) (*cutoverv1.ListAgentsResponse, error) {
	if env := req.GetEnvironment(); env != "" {
		if _, err := s.cat.Environment(ctx, env); err != nil {
			return nil, err
		}
	}
	as, err := s.fleet.Agents(req.GetEnvironment())
	if err != nil {
		return nil, err
	}
	enrolled, err := s.auth.Enrollments(ctx)
	if err != nil {
		return nil, err
	}
	drifts, err := s.deps.Drifts(req.GetEnvironment())
	if err != nil {
		return nil, err
	}
	agents := agentsToProto(as, enrolled, req.GetEnvironment())
	driftToProto(agents, drifts)
	return &cutoverv1.ListAgentsResponse{Agents: agents}, nil
}

// ApproveDeployment records the caller's approval of a deployment.
func (s *Server) ApproveDeployment(ctx context.Context, req *cutoverv1.ApproveDeploymentRequest) (*cutoverv1.Deployment, error) {
	if err := required("id", req.GetId()); err != nil {
		return nil, err
	}
	d, err := s.deps.Approve(ctx, actor(ctx), req.GetId(), req.GetComment())
	if err != nil {
		return nil, err
	}
	return deploymentToProto(d), nil
}

// ExtendDeployment moves a PREPARED deployment's expiry later.
func (s *Server) ExtendDeployment(ctx context.Context, req *cutoverv1.ExtendDeploymentRequest) (*cutoverv1.Deployment, error) {
	if err := required("id", req.GetId()); err != nil {
		return nil, err
	}
	if req.GetBy() == nil {
		return nil, required("by", "")
	}
	d, err := s.deps.Extend(ctx, actor(ctx), req.GetId(), req.GetBy().AsDuration())
	if err != nil {
		return nil, err
	}
	return deploymentToProto(d), nil
}

// CancelScheduledContinue cancels a continue scheduled at a window.
func (s *Server) CancelScheduledContinue(ctx context.Context, req *cutoverv1.CancelScheduledContinueRequest) (*cutoverv1.Deployment, error) {
	if err := required("id", req.GetId()); err != nil {
		return nil, err
	}
	d, err := s.deps.CancelSchedule(ctx, actor(ctx), req.GetId())
	if err != nil {
		return nil, err
	}
	return deploymentToProto(d), nil
}

// RollbackDeployment brings the agents of a DEPLOYED deployment back to the
// releases that ran before it; with with_database, the database too.
func (s *Server) RollbackDeployment(ctx context.Context, req *cutoverv1.RollbackDeploymentRequest) (*cutoverv1.Deployment, error) {
	if err := required("id", req.GetId()); err != nil {
		return nil, err
	}
	d, err := s.deps.Rollback(ctx, actor(ctx), req.GetId(), deployment.RollbackOptions{
		Reason: req.GetReason(), WithDatabase: req.GetWithDatabase(), Force: req.GetForce()})
	if err != nil {
		return nil, err
	}
	return deploymentToProto(d), nil
}
