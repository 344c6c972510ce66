package main

import (
	"context"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// stopAdmin is an AdminService whose StopApplication answers from memory:
// fe-1 stops, fe-2 fails, fe-9 is not connected, viewer is refused.
type stopAdmin struct {
	cutoverv1.UnimplementedAdminServiceServer

	mu   sync.Mutex
	last *cutoverv1.StopApplicationRequest
}

func (f *stopAdmin) StopApplication(_ context.Context, req *cutoverv1.StopApplicationRequest) (*cutoverv1.StopApplicationResponse, error) {
	f.mu.Lock()
	f.last = req
	f.mu.Unlock()
	if req.GetReason() == "viewer" {
		return nil, status.Error(codes.PermissionDenied, "viewer@production may not deploy to production")
	}
	out := &cutoverv1.StopApplicationResponse{}
	for _, a := range req.GetAgents() {
		switch a {
		case "fe-9":
			return nil, status.Error(codes.FailedPrecondition, "agent fe-9 is not a connected agent of environment production; nothing was sent to any agent")
		case "fe-2":
			out.Results = append(out.Results, &cutoverv1.StopApplicationResult{Agent: a, Error: "read-only file system"})
		default:
			out.Results = append(out.Results, &cutoverv1.StopApplicationResult{Agent: a})
		}
	}
	return out, nil
}

func TestAppStop(t *testing.T) {
	f := &stopAdmin{}
	addr := startFake(t, f)
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string
		wantErr  string
		wantReq  *cutoverv1.StopApplicationRequest
	}{
		{"one agent", []string{"app", "stop", "hello", "--env", "production", "--agent", "fe-1", "--reason", "INC-1"}, 0, "fe-1\tstopped hello\n", "",
			&cutoverv1.StopApplicationRequest{Environment: "production", Application: "hello", Agents: []string{"fe-1"}, Reason: "INC-1"}},
		{"one fails", []string{"app", "stop", "hello", "--environment", "production", "--agent", "fe-1", "--agent", "fe-2", "--reason", "x"}, 1,
			"fe-1\tstopped hello\nfe-2\tFAILED: read-only file system\n", "error: 1 of 2 agents did not stop hello", nil},
		{"not connected", []string{"app", "stop", "hello", "--env", "production", "--agent", "fe-9", "--reason", "x"}, 1, "",
			"error: FailedPrecondition: agent fe-9 is not a connected agent", nil},
		{"refused", []string{"app", "stop", "hello", "--env", "production", "--reason", "viewer"}, 1, "",
			"hint: your token's role does not allow this", nil},
		{"reason required", []string{"app", "stop", "hello", "--env", "production"}, 1, "", `"reason" not set`, nil},
		{"environment required", []string{"app", "stop", "hello", "--reason", "x"}, 1, "", `"environment" not set`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCtl(t, addr, tt.args...)
			if code != tt.wantCode || out != tt.wantOut || !strings.Contains(errOut, tt.wantErr) {
				t.Fatalf("exit %d, want %d\nstdout %q, want %q\nstderr %q, want %q", code, tt.wantCode, out, tt.wantOut, errOut, tt.wantErr)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if tt.wantReq != nil && !proto.Equal(f.last, tt.wantReq) {
				t.Errorf("request = %v, want %v", f.last, tt.wantReq)
			}
		})
	}
}
