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
// comes or goes or records a release, until ctx ends; it is closed then.
// A watch that etcd ends (a member lost its leader) is opened again, and
// the channel receives then too: something may have changed meanwhile.
func (c *Copies) Changed(ctx context.Context) <-chan struct{} {
	out := make(chan struct{}, 1)
	signal := func() {
		select {
		case out <- struct{}{}:
		default:
		}
	}
	go func() {
		defer close(out)
		for ctx.Err() == nil {
			wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
			members := c.cli.Watch(wctx, c.members, clientv3.WithPrefix())
			records := c.cli.Watch(wctx, c.pfx, clientv3.WithPrefix())
			for ok := true; ok; {
				select {
				case <-ctx.Done():
				case _, ok = <-members:
				case _, ok = <-records:
				}
				if ctx.Err() != nil {
					break
				}
				signal()
			}
			cancel()
			select {
			case <-ctx.Done():
			case <-time.After(time.Second): // a retry pace against a failing etcd, not a synchronisation
			}
		}
	}()
	return out
}
