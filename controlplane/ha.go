package controlplane

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/cutover-dev/cutover/controlplane/copies"
	"github.com/cutover-dev/cutover/controlplane/deployment"
	"github.com/cutover-dev/cutover/controlplane/forward"
	"github.com/cutover-dev/cutover/controlplane/leader"
	"github.com/cutover-dev/cutover/controlplane/mirror"
	"github.com/cutover-dev/cutover/pkg/identity"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// role is this controller's place among the controllers that share an
// etcd (docs/architecture.md, "Several controllers"): the leader runs the
// deployments, their timers and the agents' sessions; a follower forwards
// operators' calls to it and sends agents there. With bbolt there is no
// role: the controller always leads, at epoch 0.
type role struct {
	c       *Controller
	elector *leader.Elector
	self    string        // the address this controller announces
	epoch   atomic.Uint64 // the term's epoch while this controller leads; 0 otherwise
	fwd     *forward.Forwarder
	mirror  *mirror.Mirror
	copies  *copies.Copies // which controllers hold which releases
	follow  *leader.Follower
	ttl     time.Duration // the leader's lease
}

// newRole sets up the election, on etcd only.
func (c *Controller) newRole(cfg Config) (*role, error) {
	if c.etcd == nil {
		return nil, nil
	}
	self := cfg.Advertise
	if self == "" {
		host, port, err := net.SplitHostPort(cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("--listen %q: %w", cfg.Listen, err)
		}
		if host == "" || host == "0.0.0.0" || host == "::" {
			if host, err = os.Hostname(); err != nil {
				return nil, fmt.Errorf("--advertise is needed with a wildcard --listen: %w", err)
			}
		}
		self = net.JoinHostPort(host, port)
	}
	el, err := leader.New(leader.Config{Client: c.etcd, Prefix: cfg.Etcd.Prefix, Name: self, TTL: cfg.LeaderTTL, Log: cfg.Log})
	if err != nil {
		return nil, err
	}
	r := &role{c: c, elector: el, self: self, copies: copies.New(c.etcd, cfg.Etcd.Prefix, self),
		follow: leader.NewFollower(c.etcd, cfg.Etcd.Prefix), ttl: cmp.Or(cfg.LeaderTTL, leader.DefaultTTL)}
	r.fwd = forward.New(forward.Config{Leader: r.Leader, Services: []string{cutoverv1.AdminService_ServiceDesc.ServiceName},
		TLS: &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true, // VerifyConnection: the CA and cutover://controller
			VerifyConnection: identity.VerifyController(c.pki.CAPool())}})
	if r.mirror, err = mirror.New(mirror.Config{Records: c.store, Chunks: c.bolt, Leader: r.Leader,
		TLS: c.pki.PeerTLSConfig(), Held: r.copies, Log: cfg.Log}); err != nil {
		return nil, err
	}
	return r, nil
}

// releaseCopies is what PREPARED waits for: every live controller holding
// the releases; nil with bbolt.
func (r *role) releaseCopies() deployment.Copies {
	if r == nil {
		return nil
	}
	return r.copies
}

// leaderChanged returns what tells agentapi of a change of leader; nil
// with bbolt.
func (r *role) leaderChanged() func() <-chan struct{} {
	if r == nil {
		return nil
	}
	return r.follow.Changed
}

// holdFor is how long a follower holds the session of an agent that lost
// the controller it takes for the leader: that leader's lease, and a
// margin for the election.
func (r *role) holdFor() time.Duration {
	if r == nil {
		return 0
	}
	return r.ttl + 2*time.Second
}

// forwarder returns the forwarder of operators' calls; nil with bbolt.
func (r *role) forwarder() *forward.Forwarder {
	if r == nil {
		return nil
	}
	return r.fwd
}

// Epoch is the leader's epoch while this controller leads, else 0.
func (r *role) Epoch() uint64 {
	if r == nil {
		return 0
	}
	return r.epoch.Load()
}

// Leader says where the leader is, and whether it is this controller.
// addr is "" when no leader is known (or etcd cannot say now).
func (r *role) Leader() (addr string, self bool) {
	if r == nil {
		return "", true
	}
	if r.epoch.Load() != 0 {
		return r.self, true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	name, _, err := r.follow.Leader(ctx) // from a watch of the election: no request per call
	if err != nil || name == r.self {    // our own key from before a restart: not leading yet
		return "", false
	}
	return name, false
}

// errTermEnded ends the controller when its leadership ends.
var errTermEnded = errors.New("leadership ended")

// run campaigns; once elected it runs the leader's work (the deployment
// service: deployments, timers, the agents' commands; the collection of
// releases nothing needs) under the term's
// context, with every etcd write guarded by the term and every command
// and SQL run fenced by its epoch. When the term ends, the controller
// exits (an error from Run): it is started again (systemd's Restart=) as
// a follower that knows nothing of the old term, as kube-controller-manager
// does; what it did meanwhile is fenced.
func (r *role) run(ctx context.Context) error {
	ectx, stop := context.WithCancel(ctx)
	defer stop()
	var ended error
	err := r.elector.Run(ectx, func(lctx context.Context, t leader.Term) error {
		defer stop() // one term per process
		r.c.etcdStore.SetGuards(t.Guard)
		r.epoch.Store(t.Epoch)
		r.c.log.Info("this controller leads", "epoch", t.Epoch, "address", r.self)
		cctx, endCollect := context.WithCancel(lctx)
		collected := make(chan struct{})
		go func() { defer close(collected); r.c.collect(cctx) }() // one writer deletes releases: the leader
		err := r.c.deps.Run(lctx)
		endCollect()
		<-collected
		r.epoch.Store(0)
		ended = fmt.Errorf("%w (epoch %d: %v); the controller exits so that it starts again as a follower", errTermEnded, t.Epoch, context.Cause(lctx))
		return err
	})
	if ctx.Err() != nil {
		return nil
	}
	if ended != nil {
		return ended
	}
	return err
}

// followerConsole wraps the console: a follower's page says where the
// leader is instead of serving a console whose actions no leader runs.
func (r *role) followerConsole(h http.Handler) http.Handler {
	if r == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		addr, self := r.Leader()
		if self {
			h.ServeHTTP(w, req)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Retry-After", "5")
		w.WriteHeader(http.StatusServiceUnavailable)
		if addr == "" {
			_, _ = fmt.Fprintln(w, "This controller is a follower, and no leader is elected now; retry in a few seconds.")
			return
		}
		_, _ = fmt.Fprintf(w, "This controller is a follower; the console is served by the leader, the controller at %s.\n", addr)
	})
}
