package leader

import (
	"context"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Follower keeps who leads up to date from a watch of the election, so that
// the questions asked on every agent's connection and every forwarded call
// ("where is the leader?") cost no request to etcd. Until its first read,
// and while its watch is broken, it answers with a read of its own.
type Follower struct {
	cli    *clientv3.Client
	prefix string

	mu      sync.Mutex
	known   bool // name and epoch are those of the election since the last read
	name    string
	epoch   uint64
	changed chan struct{} // closed when name or epoch changes, then replaced
}

// NewFollower returns a Follower of the election under prefix; Run keeps
// it up to date.
func NewFollower(cli *clientv3.Client, prefix string) *Follower {
	return &Follower{cli: cli, prefix: prefix, changed: make(chan struct{})}
}

// Changed returns a channel closed at the next change of leader (or of
// term) that the Follower sees.
func (f *Follower) Changed() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.changed
}

// Leader returns the leader's name and epoch ("" and 0 when there is none),
// from the watch, or read from etcd while the watch is not known to be
// current.
func (f *Follower) Leader(ctx context.Context) (name string, epoch uint64, err error) {
	f.mu.Lock()
	if f.known {
		defer f.mu.Unlock()
		return f.name, f.epoch, nil
	}
	f.mu.Unlock()
	return Leader(ctx, f.cli, f.prefix)
}

// Run follows the election until ctx ends: it reads who leads, then reads
// again at every change of the election's keys. A watch that ends is
// opened again after a pause; meanwhile Leader reads etcd itself.
func (f *Follower) Run(ctx context.Context) {
	for ctx.Err() == nil {
		f.follow(ctx)
		f.set(false, "", 0)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second): // a retry pace against a failing etcd, not a synchronisation
		}
	}
}

// follow reads the election, then watches it from the revision read, and
// reads it again at each change, until the watch or ctx ends.
func (f *Follower) follow(ctx context.Context) {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	rev, err := f.read(wctx)
	if err != nil {
		return
	}
	for resp := range f.cli.Watch(wctx, f.prefix+KeyPrefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1)) {
		if resp.Err() != nil || resp.Canceled {
			return
		}
		if _, err := f.read(wctx); err != nil {
			return
		}
	}
}

// read reads who leads and keeps it; it returns the revision it read at.
func (f *Follower) read(ctx context.Context) (int64, error) {
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	name, epoch, rev, err := leaderAt(rctx, f.cli, f.prefix)
	if err != nil {
		return 0, err
	}
	f.set(true, name, epoch)
	return rev, nil
}

func (f *Follower) set(known bool, name string, epoch uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if known && (name != f.name || epoch != f.epoch) {
		close(f.changed)
		f.changed = make(chan struct{})
	}
	f.known, f.name, f.epoch = known, name, epoch
}
