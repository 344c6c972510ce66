package main

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// lifecycleAdmin records the requests of the commands around stage 2 and
// answers with a deployment of the id asked for.
type lifecycleAdmin struct {
	cutoverv1.UnimplementedAdminServiceServer
	mu   sync.Mutex
	reqs []proto.Message
}

func (f *lifecycleAdmin) got(req proto.Message, id string, state cutoverv1.DeploymentState) (*cutoverv1.Deployment, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs = append(f.reqs, req)
	return &cutoverv1.Deployment{Id: id, State: state}, nil
}

func (f *lifecycleAdmin) ContinueDeployment(_ context.Context, req *cutoverv1.ContinueDeploymentRequest) (*cutoverv1.Deployment, error) {
	return f.got(req, req.GetId(), cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED)
}

func (f *lifecycleAdmin) StartDeployment(_ context.Context, req *cutoverv1.StartDeploymentRequest) (*cutoverv1.Deployment, error) {
	return f.got(req, req.GetId(), cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARING)
}

func (f *lifecycleAdmin) CancelScheduledContinue(_ context.Context, req *cutoverv1.CancelScheduledContinueRequest) (*cutoverv1.Deployment, error) {
	return f.got(req, req.GetId(), cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED)
}

func (f *lifecycleAdmin) ApproveDeployment(_ context.Context, req *cutoverv1.ApproveDeploymentRequest) (*cutoverv1.Deployment, error) {
	return f.got(req, req.GetId(), cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED)
}

func (f *lifecycleAdmin) ExtendDeployment(_ context.Context, req *cutoverv1.ExtendDeploymentRequest) (*cutoverv1.Deployment, error) {
	return f.got(req, req.GetId(), cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED)
}

func (f *lifecycleAdmin) RollbackDeployment(_ context.Context, req *cutoverv1.RollbackDeploymentRequest) (*cutoverv1.Deployment, error) {
	return f.got(req, req.GetId(), cutoverv1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED)
}

func (f *lifecycleAdmin) GetEnvironment(_ context.Context, req *cutoverv1.GetEnvironmentRequest) (*cutoverv1.Environment, error) {
	return &cutoverv1.Environment{Name: req.GetName(), DeployedVersions: map[string]*cutoverv1.DeployedVersion{
		"hello": {VersionLabel: "v3", DeploymentId: "d-9"}}}, nil
}

func (f *lifecycleAdmin) WatchDeployment(req *cutoverv1.WatchDeploymentRequest, stream grpc.ServerStreamingServer[cutoverv1.DeploymentEvent]) error {
	return stream.Send(&cutoverv1.DeploymentEvent{Deployment: &cutoverv1.Deployment{Id: req.GetId(), State: cutoverv1.DeploymentState_DEPLOYMENT_STATE_ROLLED_BACK}})
}

func TestLifecycleCommands(t *testing.T) {
	f := &lifecycleAdmin{}
	addr := startFake(t, f)

	tests := []struct {
		name   string
		args   []string
		code   int
		req    proto.Message // nil: no request may be sent
		stderr string
		stdout string
	}{
		{"continue forced", []string{"deploy", "continue", "d-1", "--force", "--reason", "hotfix"}, 0,
			&cutoverv1.ContinueDeploymentRequest{Id: "d-1", Force: true, ForceReason: "hotfix"}, "", ""},
		{"force without a reason is refused here", []string{"deploy", "continue", "d-1", "--force"}, 1, nil, "--force needs --reason", ""},
		{"continue at the window", []string{"deploy", "continue", "d-1", "--at-window"}, 0,
			&cutoverv1.ContinueDeploymentRequest{Id: "d-1", AtWindow: true}, "", ""},
		{"cancel", []string{"deploy", "continue", "d-1", "--cancel"}, 0, &cutoverv1.CancelScheduledContinueRequest{Id: "d-1"}, "", ""},
		{"cancel with force", []string{"deploy", "continue", "d-1", "--cancel", "--force", "--reason", "x"}, 1, nil, "--cancel cancels a scheduled continue", ""},
		{"start forced", []string{"deploy", "start", "d-2", "--force", "--reason", "security fix"}, 0,
			&cutoverv1.StartDeploymentRequest{Id: "d-2", Force: true, ForceReason: "security fix"}, "", ""},
		{"approve", []string{"deploy", "approve", "d-3", "--comment", "CAB-1"}, 0, &cutoverv1.ApproveDeploymentRequest{Id: "d-3", Comment: "CAB-1"}, "", ""},
		{"extend", []string{"deploy", "extend", "d-3", "--by", "24h"}, 0, &cutoverv1.ExtendDeploymentRequest{Id: "d-3", By: durationpb.New(24 * time.Hour)}, "", ""},
		{"extend without --by", []string{"deploy", "extend", "d-3"}, 1, nil, "--by is required", ""},
		{"rollback", []string{"deploy", "rollback", "d-4", "--reason", "broken"}, 0, &cutoverv1.RollbackDeploymentRequest{Id: "d-4", Reason: "broken"},
			"the database is NOT rolled back", ""},
		{"rollback with the database", []string{"deploy", "rollback", "d-4", "--with-database"}, 0,
			&cutoverv1.RollbackDeploymentRequest{Id: "d-4", WithDatabase: true}, "", ""},
		{"rollback with the database, forced", []string{"deploy", "rollback", "d-4", "--with-database", "--force", "--reason", "keep the backfill"}, 0,
			&cutoverv1.RollbackDeploymentRequest{Id: "d-4", WithDatabase: true, Force: true, Reason: "keep the backfill"}, "", ""},
		{"rollback forced without the database", []string{"deploy", "rollback", "d-4", "--force", "--reason", "x"}, 1, nil,
			"--force goes with --with-database", ""},
		{"rollback with the database, forced without a reason", []string{"deploy", "rollback", "d-4", "--with-database", "--force"}, 1, nil,
			"--force needs --reason", ""},
		{"rollback with the database, forced with a blank reason", []string{"deploy", "rollback", "d-4", "--with-database", "--force", "--reason", " "}, 1, nil,
			"--force needs --reason", ""},
		{"env rollback", []string{"env", "rollback", "prod", "--app", "hello", "--wait"}, 0, &cutoverv1.RollbackDeploymentRequest{Id: "d-9"},
			"rolling back deployment d-9 (it brought hello v3)", "deployment d-9 is ROLLED_BACK"},
		{"env rollback of an unknown app", []string{"env", "rollback", "prod", "--app", "web"}, 1, nil, "records no deployment of application web", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.mu.Lock()
			before := len(f.reqs)
			f.mu.Unlock()
			code, out, errOut := runCtl(t, addr, tt.args...)
			if code != tt.code || !strings.Contains(errOut, tt.stderr) || !strings.Contains(out, tt.stdout) {
				t.Fatalf("exit %d (want %d)\nstdout:\n%s\nstderr:\n%s", code, tt.code, out, errOut)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			sent := f.reqs[before:]
			switch {
			case tt.req == nil && len(sent) != 0:
				t.Fatalf("sent %v, want nothing", sent)
			case tt.req != nil && (len(sent) != 1 || !proto.Equal(sent[0], tt.req)):
				t.Fatalf("sent %v, want %v", sent, tt.req)
			}
		})
	}
}
