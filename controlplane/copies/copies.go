// Package copies records, in etcd, which controllers hold the chunks of
// which releases, so that the leader of several controllers can say a
// deployment PREPARED only once every live controller holds its releases:
// a leader that dies after PREPARED leaves a successor that can arm, stage
// a late front-end and roll back without building again
// (docs/architecture.md, "Release data").
//
// A controller is live while its election key is (controlplane/leader:
// every controller campaigns, under <prefix>election/, with its name as
// the value). A follower records each release it mirrored whole under
// <prefix>mirrors/<name>/<release>; it deletes its records when it starts,
// so that a controller whose data dir was lost does not claim what it no
// longer holds.
package copies

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cutover-dev/cutover/controlplane/leader"
)

// requestTimeout bounds each request to etcd.
const requestTimeout = 5 * time.Second

// Copies reads and writes the records of one controller, Self.
type Copies struct {
	cli     *clientv3.Client
	pfx     string // <prefix>mirrors/
	members string // <prefix>election/
	self    string
}

// New returns the records of the controller named self (its election
// name) under prefix.
func New(cli *clientv3.Client, prefix, self string) *Copies {
	return &Copies{cli: cli, pfx: prefix + "mirrors/", members: prefix + leader.KeyPrefix, self: self}
}

func (c *Copies) key(name, release string) string {
	return c.pfx + url.PathEscape(name) + "/" + url.PathEscape(release)
}

// Hold records that this controller holds every chunk of release.
func (c *Copies) Hold(ctx context.Context, release string) error {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	if _, err := c.cli.Put(ctx, c.key(c.self, release), ""); err != nil {
		return fmt.Errorf("record that %s holds release %s: %w", c.self, release, err)
	}
	return nil
}

// Reset deletes this controller's records: it holds nothing it has not
// checked since it started.
func (c *Copies) Reset(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	if _, err := c.cli.Delete(ctx, c.pfx+url.PathEscape(c.self)+"/", clientv3.WithPrefix()); err != nil {
		return fmt.Errorf("forget the releases %s held: %w", c.self, err)
	}
	return nil
}

// Lacking returns, sorted, the live controllers other than this one that
// do not hold every one of releases yet.
func (c *Copies) Lacking(ctx context.Context, releases []string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	resp, err := c.cli.Txn(ctx).Then(clientv3.OpGet(c.members, clientv3.WithPrefix()),
		clientv3.OpGet(c.pfx, clientv3.WithPrefix(), clientv3.WithKeysOnly())).Commit()
	if err != nil {
		return nil, fmt.Errorf("read which controllers hold the releases: %w", err)
	}
	held := map[string]bool{}
	for _, kv := range resp.Responses[1].GetResponseRange().Kvs {
		held[string(kv.Key)] = true
	}
	var out []string
	for _, kv := range resp.Responses[0].GetResponseRange().Kvs {
		name := string(kv.Value)
		if name == c.self || slices.Contains(out, name) {
			continue
		}
		for _, r := range releases {
			if !held[c.key(name, r)] {
				out = append(out, name)
				break
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

// Changed returns a channel that receives (coalesced) when a controller
// comes or goes or records a release after Changed returned, until ctx
// ends; it is closed then. The watches start at the revision read when
// Changed is called, so no change after it is missed; a watch that etcd
// ends (a member lost its leader) is opened again from the last revision
// seen.
func (c *Copies) Changed(ctx context.Context) <-chan struct{} {
	out := make(chan struct{}, 1)
	var rev int64 // watch from rev+1; 0: from now
	rctx, cancel := context.WithTimeout(ctx, requestTimeout)
	if resp, err := c.cli.Get(rctx, c.pfx, clientv3.WithPrefix(), clientv3.WithCountOnly()); err == nil {
		rev = resp.Header.Revision
	}
	cancel()
	go func() {
		defer close(out)
		for ctx.Err() == nil {
			rev = c.watch(ctx, rev, out)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second): // a retry pace against a failing etcd, not a synchronisation
			}
		}
	}()
	return out
}

// watch signals out at every change of the members or the records after
// rev (from now if 0) until the watch or ctx ends, and returns the last
// revision it saw.
func (c *Copies) watch(ctx context.Context, rev int64, out chan<- struct{}) int64 {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	opts := []clientv3.OpOption{clientv3.WithPrefix()}
	if rev > 0 {
		opts = append(opts, clientv3.WithRev(rev+1))
	}
	members, records := c.cli.Watch(wctx, c.members, opts...), c.cli.Watch(wctx, c.pfx, opts...)
	for {
		var resp clientv3.WatchResponse
		var ok bool
		select {
		case <-ctx.Done():
			return rev
		case resp, ok = <-members:
		case resp, ok = <-records:
		}
		if !ok || resp.Canceled || resp.Err() != nil {
			return rev
		}
		rev = max(rev, resp.Header.Revision)
		select {
		case out <- struct{}{}:
		default:
		}
	}
}
