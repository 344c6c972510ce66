package auth

import (
	"errors"
	"testing"

	"github.com/cutover-dev/cutover/pkg/errkind"
	"github.com/cutover-dev/cutover/pkg/identity"
)

func TestAllowed(t *testing.T) {
	op := func(r Role, env string) Subject { return Subject{Name: "alice", Role: r, Environment: env} }
	prod := Target{Environment: "production"}
	staging := Target{Environment: "staging"}
	global := Target{Global: true}
	all := Target{}
	agent := AgentSubject(identity.Agent{Environment: "production", Name: "fe-1"})
	tests := []struct {
		name string
		s    Subject
		a    Action
		t    Target
		ok   bool
	}{
		{"viewer reads", op(Viewer, ""), Read, prod, true},
		{"viewer may not continue", op(Viewer, ""), Deploy, prod, false},
		{"viewer may not approve", op(Viewer, ""), Approve, prod, false},
		{"deployer deploys", op(Deployer, ""), Deploy, prod, true},
		{"deployer may not create environments", op(Deployer, ""), Administer, prod, false},
		{"deployer may not approve", op(Deployer, ""), Approve, prod, false},
		{"approver approves", op(Approver, ""), Approve, prod, true},
		{"approver may not deploy", op(Approver, ""), Deploy, prod, false},
		{"admin does everything", op(Admin, ""), Administer, global, true},
		{"admin deploys", op(Admin, ""), Deploy, prod, true},
		{"scoped deployer in its environment", op(Deployer, "production"), Deploy, prod, true},
		{"scoped deployer elsewhere", op(Deployer, "production"), Deploy, staging, false},
		{"scoped viewer lists across all", op(Viewer, "production"), Read, all, false},
		{"scoped viewer reads global", op(Viewer, "production"), Read, global, true},
		{"scoped admin may not manage global", op(Admin, "production"), Administer, global, false},
		{"scoped admin manages its environment", op(Admin, "production"), Administer, prod, true},
		{"operator may not be an agent", op(Admin, ""), Session, prod, false},
		{"agent in its environment", agent, Session, prod, true},
		{"agent in another environment", agent, Session, staging, false},
		{"agent may not read", agent, Read, prod, false},
		{"no role", Subject{Name: "x"}, Read, prod, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Allowed(tt.s, tt.a, tt.t)
			if (err == nil) != tt.ok {
				t.Fatalf("Allowed = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, errkind.PermissionDenied) {
				t.Errorf("kind of %v is not PermissionDenied", err)
			}
		})
	}
}

func TestRoles(t *testing.T) {
	for _, name := range []string{"viewer", "deployer", "approver", "admin"} {
		r, err := ParseRole(name)
		if err != nil || r.String() != name {
			t.Errorf("ParseRole(%q) = %v, %v", name, r, err)
		}
	}
	if _, err := ParseRole("root"); !errors.Is(err, errkind.InvalidArgument) {
		t.Errorf("ParseRole(root) = %v", err)
	}
	if got := (Subject{Role: Deployer, Environment: "production"}).Roles(); len(got) != 1 || got[0] != "deployer@production" {
		t.Errorf("Roles = %v", got)
	}
}
