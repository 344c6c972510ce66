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
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cutover-dev/cutover/pkg/token"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// tokenAdmin is an AdminService that issues and lists tokens from memory.
type tokenAdmin struct {
	cutoverv1.UnimplementedAdminServiceServer

	mu       sync.Mutex
	requests []proto.Message
	issued   []token.Token
}

func (f *tokenAdmin) got(req proto.Message) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, req)
}

// last returns the last request received.
func (f *tokenAdmin) last() proto.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.requests) == 0 {
		return nil
	}
	return f.requests[len(f.requests)-1]
}

var created = timestamppb.New(time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC))

func (f *tokenAdmin) CreateToken(_ context.Context, req *cutoverv1.CreateTokenRequest) (*cutoverv1.CreateTokenResponse, error) {
	f.got(req)
	tok := token.New()
	f.mu.Lock()
	f.issued = append(f.issued, tok)
	f.mu.Unlock()
	return &cutoverv1.CreateTokenResponse{Token: tok.Operator(), Info: &cutoverv1.TokenInfo{
		Id: tok.ID, Subject: req.GetSubject(), Role: req.GetRole(), Environment: req.GetEnvironment(), CreateTime: created, CreatedBy: "root",
	}}, nil
}

func (f *tokenAdmin) ListTokens(_ context.Context, req *cutoverv1.ListTokensRequest) (*cutoverv1.ListTokensResponse, error) {
	f.got(req)
	return &cutoverv1.ListTokensResponse{Tokens: []*cutoverv1.TokenInfo{
		{Id: "0123456789abcdef", Subject: "root", Role: cutoverv1.Role_ROLE_ADMIN, CreateTime: created},
		{Id: "fedcba9876543210", Subject: "alice", Role: cutoverv1.Role_ROLE_DEPLOYER, Environment: "production",
			CreateTime: created, ExpireTime: created, RevokeTime: created, CreatedBy: "root"},
	}}, nil
}

func (f *tokenAdmin) RevokeToken(_ context.Context, req *cutoverv1.RevokeTokenRequest) (*cutoverv1.TokenInfo, error) {
	f.got(req)
	if req.GetId() != "fedcba9876543210" {
		return nil, status.Errorf(codes.NotFound, "token %s does not exist", req.GetId())
	}
	return &cutoverv1.TokenInfo{Id: req.GetId(), Subject: "alice", Role: cutoverv1.Role_ROLE_DEPLOYER, CreateTime: created, RevokeTime: created}, nil
}

func TestTokenCommands(t *testing.T) {
	f := &tokenAdmin{}
	addr := startFake(t, f)

	tests := []struct {
		name     string
		args     []string
		wantCode int
		// wantOut is what stdout holds; "<token>" stands for the token issued.
		wantOut string
		wantErr string
		wantReq proto.Message
	}{
		{"create", []string{"token", "create", "--subject", "alice", "--role", "deployer", "--environment", "production", "--ttl", "720h"},
			0, "<token>\n", "", &cutoverv1.CreateTokenRequest{Subject: "alice", Role: cutoverv1.Role_ROLE_DEPLOYER, Environment: "production", Ttl: durationpb.New(720 * time.Hour)}},
		{"create with --env and no ttl", []string{"token", "create", "--subject", "ci", "--role", "VIEWER", "--env", "staging"},
			0, "<token>\n", "", &cutoverv1.CreateTokenRequest{Subject: "ci", Role: cutoverv1.Role_ROLE_VIEWER, Environment: "staging"}},
		{"create admin on every environment", []string{"token", "create", "--subject", "bob", "--role", "admin"},
			0, "<token>\n", "", &cutoverv1.CreateTokenRequest{Subject: "bob", Role: cutoverv1.Role_ROLE_ADMIN}},
		{"unknown role", []string{"token", "create", "--subject", "x", "--role", "boss"},
			1, "", `--role "boss": want one of viewer, deployer, approver, admin`, nil},
		{"no role", []string{"token", "create", "--subject", "x"}, 1, "", `"role" not set`, nil},
		{"negative ttl", []string{"token", "create", "--subject", "x", "--role", "viewer", "--ttl", "-1h"}, 1, "", "--ttl -1h0m0s: want a positive duration", nil},
		{"list", []string{"token", "list"}, 0,
			"ID                SUBJECT  ROLE      ENVIRONMENT  CREATED              EXPIRES              REVOKED              CREATED-BY\n" +
				"0123456789abcdef  root     admin     *            " + formatTime(created) + "  -                    -                    -\n" +
				"fedcba9876543210  alice    deployer  production   " + formatTime(created) + "  " + formatTime(created) + "  " + formatTime(created) + "  root\n",
			"", &cutoverv1.ListTokensRequest{}},
		{"revoke", []string{"token", "revoke", "fedcba9876543210"}, 0, "REVOKED      " + formatTime(created), "", &cutoverv1.RevokeTokenRequest{Id: "fedcba9876543210"}},
		{"revoke unknown", []string{"token", "revoke", "0000000000000000"}, 1, "", "error: NotFound: token 0000000000000000 does not exist", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCtl(t, addr, tt.args...)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.wantCode, out, errOut)
			}
			want := tt.wantOut
			if strings.Contains(want, "<token>") {
				f.mu.Lock()
				want = strings.ReplaceAll(want, "<token>", f.issued[len(f.issued)-1].Operator())
				f.mu.Unlock()
				if out != want {
					t.Errorf("stdout = %q, want the token alone: %q", out, want)
				}
			} else if !strings.Contains(out, want) {
				t.Errorf("stdout lacks %q:\n%s", want, out)
			}
			if !strings.Contains(errOut, tt.wantErr) {
				t.Errorf("stderr lacks %q:\n%s", tt.wantErr, errOut)
			}
			if tt.wantReq != nil && !proto.Equal(f.last(), tt.wantReq) {
				t.Errorf("request = %v, want %v", f.last(), tt.wantReq)
			}
		})
	}

	code, out, errOut := runCtl(t, addr, "-o", "json", "token", "create", "--subject", "alice", "--role", "approver")
	var resp cutoverv1.CreateTokenResponse
	if err := protojson.Unmarshal([]byte(out), &resp); code != 0 || err != nil {
		t.Fatalf("token create -o json: exit %d, %v\n%s%s", code, err, out, errOut)
	}
	if _, err := token.ParseOperator(resp.GetToken()); err != nil || resp.GetInfo().GetRole() != cutoverv1.Role_ROLE_APPROVER || !strings.Contains(out, `"created_by"`) {
		t.Errorf("token create -o json = %s (%v)", out, err)
	}
}
