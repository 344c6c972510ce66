package main

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// joinToken is what agentAdmin issues.
const joinToken = "cutoverjoin.0123456789abcdef.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA.0000000000000000000000000000000000000000000000000000000000000000"

// agentAdmin is an AdminService that enrolls and revokes agents from memory.
type agentAdmin struct {
	cutoverv1.UnimplementedAdminServiceServer

	mu   sync.Mutex
	last proto.Message
}

func (f *agentAdmin) got(req proto.Message) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.last = req
}

func (f *agentAdmin) CreateJoinToken(_ context.Context, req *cutoverv1.CreateJoinTokenRequest) (*cutoverv1.CreateJoinTokenResponse, error) {
	f.got(req)
	return &cutoverv1.CreateJoinTokenResponse{Token: joinToken, Id: "0123456789abcdef", ExpireTime: created, CaCertHash: "sha256:00"}, nil
}

func (f *agentAdmin) RevokeAgent(_ context.Context, req *cutoverv1.RevokeAgentRequest) (*cutoverv1.Agent, error) {
	f.got(req)
	if req.GetName() != "fe-2" || req.GetEnvironment() != "production" {
		return nil, status.Errorf(codes.NotFound, "agent %s of %s was never enrolled", req.GetName(), req.GetEnvironment())
	}
	return &cutoverv1.Agent{Name: "fe-2", Environment: "production", Identity: "cutover://production/agent/fe-2",
		CertExpireTime: created, RevokeTime: created}, nil
}

func (f *agentAdmin) RemoveAgent(_ context.Context, req *cutoverv1.RemoveAgentRequest) (*cutoverv1.Agent, error) {
	f.got(req)
	if req.GetName() == "fe-1" {
		return nil, status.Errorf(codes.FailedPrecondition, "agent fe-1 of environment production is connected")
	}
	return &cutoverv1.Agent{Name: req.GetName(), Environment: "production", LastSeenTime: created}, nil
}

func TestAgentTrustCommands(t *testing.T) {
	f := &agentAdmin{}
	addr := startFake(t, f)

	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string
		exact    bool
		wantErr  string
		wantReq  proto.Message
	}{
		{"join token with defaults", []string{"agent", "token", "create", "--environment", "production"}, 0, joinToken + "\n", true, "",
			&cutoverv1.CreateJoinTokenRequest{Environment: "production", Ttl: durationpb.New(time.Hour), Uses: 1}},
		{"join token with everything", []string{"agents", "token", "create", "--env", "staging", "--ttl", "4h", "--uses", "3", "--name", "fe-9"}, 0, joinToken + "\n", true, "",
			&cutoverv1.CreateJoinTokenRequest{Environment: "staging", Ttl: durationpb.New(4 * time.Hour), Uses: 3, Name: "fe-9"}},
		{"join token needs an environment", []string{"agent", "token", "create"}, 1, "", false, `"environment" not set`, nil},
		{"join token, no uses", []string{"agent", "token", "create", "--environment", "p", "--uses", "0"}, 1, "", false, "--uses 0: want at least 1", nil},
		{"join token, no ttl", []string{"agent", "token", "create", "--environment", "p", "--ttl", "0"}, 1, "", false, "--ttl 0s: want a positive duration", nil},
		{"revoke", []string{"agent", "revoke", "fe-2", "--environment", "production"}, 0,
			"IDENTITY      cutover://production/agent/fe-2\nCONNECTED     no\nCERT-EXPIRES  " + formatTime(created) + "\nREVOKED       " + formatTime(created), false, "",
			&cutoverv1.RevokeAgentRequest{Environment: "production", Name: "fe-2"}},
		{"revoke needs an environment", []string{"agent", "revoke", "fe-2"}, 1, "", false, `"environment" not set`, nil},
		{"remove", []string{"agent", "remove", "fe-3", "--environment", "production"}, 0, "CONNECTED     no", false, "",
			&cutoverv1.RemoveAgentRequest{Environment: "production", Name: "fe-3"}},
		{"remove without environment", []string{"agents", "rm", "fe-3"}, 0, "CONNECTED     no", false, "",
			&cutoverv1.RemoveAgentRequest{Name: "fe-3"}},
		{"remove connected", []string{"agent", "remove", "fe-1", "--env", "production"}, 1, "", false, "error: FailedPrecondition: agent fe-1 of environment production is connected", nil},
		{"revoke unknown", []string{"agent", "revoke", "fe-7", "--env", "production"}, 1, "", false, "error: NotFound: agent fe-7 of production was never enrolled", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCtl(t, addr, tt.args...)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.wantCode, out, errOut)
			}
			if tt.exact && out != tt.wantOut || !strings.Contains(out, tt.wantOut) {
				t.Errorf("stdout = %q, want %q", out, tt.wantOut)
			}
			if !strings.Contains(errOut, tt.wantErr) {
				t.Errorf("stderr lacks %q:\n%s", tt.wantErr, errOut)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if tt.wantReq != nil && !proto.Equal(f.last, tt.wantReq) {
				t.Errorf("request = %v, want %v", f.last, tt.wantReq)
			}
		})
	}

	code, out, errOut := runCtl(t, addr, "-o", "json", "agent", "token", "create", "--environment", "production")
	var resp cutoverv1.CreateJoinTokenResponse
	if err := protojson.Unmarshal([]byte(out), &resp); code != 0 || err != nil || resp.GetCaCertHash() != "sha256:00" {
		t.Errorf("agent token create -o json: exit %d, %v\n%s%s", code, err, out, errOut)
	}
}
