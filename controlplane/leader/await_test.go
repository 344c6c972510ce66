package leader

import (
	"context"
	"sync"
	"testing"
	"time"
)

// election is a leader the test changes, with the channel Await waits on.
type election struct {
	mu       sync.Mutex
	addr     string
	self     bool
	changed  chan struct{}
	watching chan struct{} // receives each time the server is about to wait for a change
}

func newElection(addr string) *election {
	return &election{addr: addr, changed: make(chan struct{}), watching: make(chan struct{}, 8)}
}

func (e *election) leader() (string, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.addr, e.self
}

func (e *election) watch() <-chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.watching <- struct{}{}
	return e.changed
}

func (e *election) elect(addr string, self bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.addr, e.self = addr, self
	close(e.changed)
	e.changed = make(chan struct{})
}

// TestAwaitLeader: a follower answers at once, unless the leader it knows
// is the controller the agent could not reach: then it waits for the next
// leader (this controller or another), for at most holdFor.
func TestAwaitLeader(t *testing.T) {
	tests := []struct {
		name        string
		unreachable string
		elect       string // "" : nobody is elected meanwhile; "self": this controller
		hold        time.Duration
		wantAddr    string
		wantSelf    bool
	}{
		{"the agent lost nothing: at once", "", "b:7070", time.Hour, "dead:7070", false},
		{"the agent lost another controller: at once", "c:7070", "b:7070", time.Hour, "dead:7070", false},
		{"the agent lost the leader: held until another is elected", "dead:7070", "b:7070", time.Hour, "b:7070", false},
		{"this controller is elected: served here", "dead:7070", "self", time.Hour, "self:7070", true},
		{"nobody is elected within the hold", "dead:7070", "", 50 * time.Millisecond, "dead:7070", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newElection("dead:7070")
			type answer struct {
				addr string
				self bool
			}
			got := make(chan answer, 1)
			go func() {
				addr, self := Await(context.Background(), e.leader, e.watch, tt.unreachable, tt.hold)
				got <- answer{addr, self}
			}()
			if tt.unreachable == "dead:7070" && tt.elect != "" {
				<-e.watching // it read the leader (the dead one) and waits for a change
				select {
				case a := <-got:
					t.Fatalf("answered %v before a leader was elected", a)
				default:
				}
				if tt.elect == "self" {
					e.elect("self:7070", true)
				} else {
					e.elect(tt.elect, false)
				}
			}
			if a := <-got; a.addr != tt.wantAddr || a.self != tt.wantSelf {
				t.Errorf("Await = %q, %v; want %q, %v", a.addr, a.self, tt.wantAddr, tt.wantSelf)
			}
		})
	}
}
