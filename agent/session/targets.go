package session

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"

	"github.com/cutover-dev/cutover/pkg/errkind"
	"github.com/cutover-dev/cutover/pkg/rpcerr"
)

// Targets are the controllers an agent may reach (--controller a,b,c:
// several controllers sharing one etcd) and the one its connection uses
// now. Only the leader runs sessions; a follower answers with the
// leader's address (errkind.NotLeader), and Follow moves the connection
// there. When the controller in use cannot be reached, Follow moves to the
// next one in the list. One connection serves the session, the chunk
// fetches and the certificate renewals, so that they all follow.
type Targets struct {
	mu       sync.Mutex
	addrs    []string
	cur      string
	lost     string    // the controller last left because it could not be reached
	lostTime time.Time // when
	res      *manual.Resolver
	log      *slog.Logger
}

// lostFor is how long Unreachable names a controller that was left: about
// what a failover takes.
const lostFor = time.Minute

// NewTargets parses a comma-separated list of controller addresses.
func NewTargets(list string, log *slog.Logger) (*Targets, error) {
	var addrs []string
	for a := range strings.SplitSeq(list, ",") {
		if a = strings.TrimSpace(a); a != "" && !slices.Contains(addrs, a) {
			addrs = append(addrs, a)
		}
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("no controller address in %q: %w", list, errkind.InvalidArgument)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	res := manual.NewBuilderWithScheme("cutover-controllers")
	res.InitialState(resolver.State{Addresses: []resolver.Address{{Addr: addrs[0]}}})
	return &Targets{addrs: addrs, cur: addrs[0], res: res, log: log}, nil
}

// Addrs returns the configured addresses.
func (t *Targets) Addrs() []string { return slices.Clone(t.addrs) }

// Current returns the address the connection uses now.
func (t *Targets) Current() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.cur
}

// Unreachable returns the controller that Follow last left because it
// could not be reached, within lostFor; "" if none. A follower that still
// takes it for the leader holds the agent's session until another is
// elected (proto AgentHello.unreachable_controller).
func (t *Targets) Unreachable() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.lost == "" || time.Since(t.lostTime) > lostFor {
		return ""
	}
	return t.lost
}

// Follow moves the connection where err says to go: to the leader a
// NotLeader names (toLeader), or, when err is Unavailable (the controller
// is down, or a follower knows no leader yet), to the next address of the
// list. It says whether the connection moved. With a single address it
// moves only to a named leader.
func (t *Targets) Follow(err error) (moved, toLeader bool) {
	err = rpcerr.FromStatus(err)
	if !errors.Is(err, errkind.Unavailable) {
		return false, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	next := t.cur
	var nl *errkind.NotLeader
	answered := errors.As(err, &nl) // a follower answered
	if toLeader = answered && nl.Leader != ""; toLeader {
		next = nl.Leader
	} else if len(t.addrs) > 1 {
		i := slices.Index(t.addrs, t.cur) // -1 for a leader outside the list: start over
		next = t.addrs[(i+1)%len(t.addrs)]
		if !answered {
			t.lost, t.lostTime = t.cur, time.Now()
		}
	}
	if next == t.cur {
		return false, false
	}
	t.log.Info("moving to another controller", "from", t.cur, "to", next, "because", err.Error())
	t.cur = next
	t.res.UpdateState(resolver.State{Addresses: []resolver.Address{{Addr: next}}})
	return true, toLeader
}

// DialTargets is Dial for a list of controllers: the connection goes to
// t.Current() and moves when Follow says so.
func DialTargets(t *Targets, conf *tls.Config) (*grpc.ClientConn, error) {
	return dial(t.res.Scheme()+":///controllers", conf, grpc.WithResolvers(t.res))
}
