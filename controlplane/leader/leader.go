// Package leader elects one controller among the controllers that share an
// etcd cluster, with go.etcd.io/etcd/client/v3/concurrency's election: the
// leader holds a key under <prefix>election/ attached to its session's
// lease; the others wait for it to go.
//
// Leader work runs under a context that ends the moment leadership is in
// doubt: the session's lease is gone (etcd says so, or the keepalive
// stopped), the election key was deleted, or the work itself ended. A
// controller paused past its lease (SIGSTOP, a long GC, a frozen VM) finds
// its context ended when it wakes; what it does before it notices is
// fenced twice: the commands it sends carry its Term's epoch, which agents
// that have seen a newer leader refuse, and its writes to etcd are
// conditioned on Term.Guard, which fails once its key is gone.
package leader

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// DefaultTTL is the default lifetime of the leader's lease: a leader that
// died is replaced within about this time.
const DefaultTTL = 10 * time.Second

// KeyPrefix is where, under the controllers' prefix, every controller
// campaigns: a key per live controller, its name as the value.
const KeyPrefix = "election/"

// Config configures an Elector.
type Config struct {
	// Client is the etcd client. Required.
	Client *clientv3.Client
	// Prefix is the controllers' key prefix (for example "/cutover/"); the
	// election keys are under Prefix + "election/".
	Prefix string
	// Name is what this controller announces as leader: the address
	// agents and operators reach it at. Required.
	Name string
	// TTL is the lease's lifetime, rounded to whole seconds (at least 1);
	// default DefaultTTL.
	TTL time.Duration
	Log *slog.Logger
}

// Term is one tenure of leadership.
type Term struct {
	// Epoch is the revision at which the leader's election key was
	// created: it grows with every new leader. Commands carry it.
	Epoch uint64
	// Key is the leader's election key.
	Key string
	// Guard holds while Key is the key this term created: a write to
	// etcd made with it as a condition fails once the term is over.
	Guard clientv3.Cmp
}

// Elector campaigns for leadership and runs leader work.
type Elector struct {
	cfg Config
	pfx string
}

// New returns an Elector; Run campaigns.
func New(cfg Config) (*Elector, error) {
	if cfg.Client == nil || cfg.Name == "" {
		return nil, errors.New("leader: Client and Name are required")
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Elector{cfg: cfg, pfx: cfg.Prefix + KeyPrefix}, nil
}

// ttlSeconds is the lease TTL in whole seconds.
func (e *Elector) ttlSeconds() int { return max(1, int(e.cfg.TTL.Round(time.Second)/time.Second)) }

// Run campaigns until ctx ends. Each time it wins, it calls lead with a
// context that ends when the term does (see the package comment), waits
// for lead to return, resigns, and campaigns again. An error from lead is
// logged and ends the term, not Run. Run returns nil when ctx ends, or an
// error when it cannot reach etcd to campaign at all before ctx ends.
func (e *Elector) Run(ctx context.Context, lead func(ctx context.Context, t Term) error) error {
	for ctx.Err() == nil {
		if err := e.term(ctx, lead); err != nil && ctx.Err() == nil {
			e.cfg.Log.Warn("leader election: campaign failed; trying again", "error", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second): // not a test synchronisation: a retry pace against a failing etcd
			}
		}
	}
	return nil
}

// term campaigns once and, if it wins, leads one term.
func (e *Elector) term(ctx context.Context, lead func(ctx context.Context, t Term) error) error {
	sess, err := concurrency.NewSession(e.cfg.Client, concurrency.WithTTL(e.ttlSeconds()), concurrency.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("open an etcd session: %w", err)
	}
	defer func() { _ = sess.Close() }() // revokes the lease: the next leader need not wait for it
	el := concurrency.NewElection(sess, e.pfx)
	if err := el.Campaign(ctx, e.cfg.Name); err != nil {
		return fmt.Errorf("campaign: %w", err)
	}
	t := Term{Epoch: uint64(el.Rev()), Key: el.Key(),
		Guard: clientv3.Compare(clientv3.CreateRevision(el.Key()), "=", el.Rev())}
	lctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go e.watchTerm(lctx, cancel, sess, t)
	e.cfg.Log.Info("elected leader", "epoch", t.Epoch, "name", e.cfg.Name)
	if err := lead(lctx, t); err != nil && lctx.Err() == nil {
		e.cfg.Log.Error("leader work failed; resigning", "epoch", t.Epoch, "error", err)
	}
	cancel(errors.New("the term ended"))
	e.cfg.Log.Info("leadership ended", "epoch", t.Epoch, "cause", context.Cause(lctx))
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer rcancel()
	_ = el.Resign(rctx) // fails harmlessly when the key is already gone
	return nil
}

// watchTerm ends the term's context when its lease is gone or its key was
// deleted. It also asks etcd for the lease's time to live every third of
// the TTL, and ends the term when no answer confirmed the lease for a
// whole TTL: a leader cut off from etcd must stop before another is
// elected, not after.
func (e *Elector) watchTerm(ctx context.Context, end context.CancelCauseFunc, sess *concurrency.Session, t Term) {
	wch := e.cfg.Client.Watch(clientv3.WithRequireLeader(ctx), t.Key, clientv3.WithRev(int64(t.Epoch)+1))
	tick := time.NewTicker(e.cfg.TTL / 3)
	defer tick.Stop()
	confirmed := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-sess.Done():
			end(errors.New("the etcd session's lease expired or its keepalive stopped"))
			return
		case resp, ok := <-wch:
			if !ok || resp.Canceled {
				end(fmt.Errorf("the watch of the election key ended: %v", resp.Err()))
				return
			}
			for _, ev := range resp.Events {
				if ev.Type == clientv3.EventTypeDelete {
					end(errors.New("the election key was deleted"))
					return
				}
			}
		case <-tick.C:
			qctx, cancel := context.WithTimeout(ctx, e.cfg.TTL/3)
			ttl, err := e.cfg.Client.TimeToLive(qctx, sess.Lease())
			cancel()
			switch {
			case err == nil && ttl.TTL > 0:
				confirmed = time.Now()
			case err == nil:
				end(errors.New("the etcd session's lease expired"))
				return
			case time.Since(confirmed) >= e.cfg.TTL:
				end(fmt.Errorf("etcd has not confirmed the lease for %s: %w", time.Since(confirmed).Round(time.Millisecond), err))
				return
			}
		}
	}
}

// Leader returns the name of the current leader, and its epoch; "" and 0
// when there is none.
func Leader(ctx context.Context, cli *clientv3.Client, prefix string) (name string, epoch uint64, err error) {
	name, epoch, _, err = leaderAt(ctx, cli, prefix)
	return name, epoch, err
}

// leaderAt is Leader, with the revision etcd read it at.
func leaderAt(ctx context.Context, cli *clientv3.Client, prefix string) (name string, epoch uint64, rev int64, err error) {
	resp, err := cli.Get(ctx, prefix+KeyPrefix, clientv3.WithFirstCreate()...)
	if err != nil {
		return "", 0, 0, fmt.Errorf("read the election: %w", err)
	}
	if len(resp.Kvs) > 0 {
		name, epoch = string(resp.Kvs[0].Value), uint64(resp.Kvs[0].CreateRevision)
	}
	return name, epoch, resp.Header.Revision, nil
}
