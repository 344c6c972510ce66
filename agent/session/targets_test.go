package session

import (
	"net"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/cutover-dev/cutover/pkg/errkind"
)

// withTargets makes startAgent's session use a connection to targets.
func withTargets(t *testing.T, list string) func(*Config) {
	t.Helper()
	targets, err := NewTargets(list, nil)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(targets.res.Scheme()+":///controllers", grpc.WithResolvers(targets.res),
		grpc.WithTransportCredentials(insecure.NewCredentials())) // the fake controllers of this package's tests
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return func(c *Config) { c.Conn, c.Targets = conn, targets }
}

// deadAddr returns an address nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	_ = lis.Close()
	return addr
}

func TestTargetsFollowTheLeader(t *testing.T) {
	leader := &fakeController{sessions: make(chan *fakeSession, 4)}
	_, leaderAddr := serve(t, leader, "127.0.0.1:0")
	follower := &fakeController{sessions: make(chan *fakeSession, 4), refuse: &errkind.NotLeader{Leader: leaderAddr}}
	_, followerAddr := serve(t, follower, "127.0.0.1:0")

	dead1, dead2 := deadAddr(t), deadAddr(t)
	tests := []struct {
		name string
		list string
		lost string // the hello's unreachable_controller
	}{
		{"a follower names the leader", followerAddr, ""},
		{"the first controller is down", dead1 + "," + leaderAddr, dead1},
		{"down, then a follower", dead2 + "," + followerAddr, dead2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mod := withTargets(t, tt.list)
			s := startAgent(t, "unused", &fakeHandler{calls: map[string]int{}}, mod)
			if sess := next(t, leader.sessions); sess.hello.GetName() != "fe-1" || sess.hello.GetUnreachableController() != tt.lost {
				t.Fatalf("hello = %v; want unreachable_controller %q", sess.hello, tt.lost)
			}
			if got := s.cfg.Targets.Current(); got != leaderAddr {
				t.Errorf("the connection is at %s, want the leader %s", got, leaderAddr)
			}
		})
	}
}

func TestNewTargets(t *testing.T) {
	tests := []struct {
		list string
		want []string
		ok   bool
	}{
		{"a:1", []string{"a:1"}, true},
		{" a:1, b:2 ,a:1,", []string{"a:1", "b:2"}, true},
		{" , ", nil, false},
	}
	for _, tt := range tests {
		got, err := NewTargets(tt.list, nil)
		if (err == nil) != tt.ok {
			t.Fatalf("NewTargets(%q) error = %v", tt.list, err)
		}
		if err == nil && (len(got.Addrs()) != len(tt.want) || got.Addrs()[0] != tt.want[0] || got.Current() != tt.want[0]) {
			t.Errorf("NewTargets(%q) = %v, want %v", tt.list, got.Addrs(), tt.want)
		}
	}
}
