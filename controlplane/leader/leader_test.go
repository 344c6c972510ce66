package leader

import (
	"context"
	"os"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cutover-dev/cutover/internal/etcdcluster"
)

var cluster *etcdcluster.Cluster

func TestMain(m *testing.M) {
	os.Exit(etcdcluster.Main(m, 3, func(c *etcdcluster.Cluster) { cluster = c }))
}

func client(t *testing.T) *clientv3.Client { return etcdcluster.Client(t, cluster) }

// candidate runs an Elector in the background; its terms come out of
// terms, and each term lasts until the test closes its end channel or its
// context ends.
type candidate struct {
	terms chan termRun
	stop  context.CancelFunc
	done  chan struct{}
}

type termRun struct {
	Term
	ctx context.Context
	end chan struct{}
}

func campaign(t *testing.T, cli *clientv3.Client, prefix, name string) *candidate {
	t.Helper()
	e, err := New(Config{Client: cli, Prefix: prefix, Name: name, TTL: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &candidate{terms: make(chan termRun, 4), stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		_ = e.Run(ctx, func(ctx context.Context, term Term) error {
			r := termRun{Term: term, ctx: ctx, end: make(chan struct{})}
			c.terms <- r
			select {
			case <-ctx.Done():
			case <-r.end:
			}
			return nil
		})
	}()
	t.Cleanup(func() { cancel(); <-c.done })
	return c
}

func nextTerm(t *testing.T, c *candidate, within time.Duration) termRun {
	t.Helper()
	select {
	case r := <-c.terms:
		return r
	case <-time.After(within):
		t.Fatalf("no term within %s", within)
		panic("unreachable")
	}
}

func ended(t *testing.T, ctx context.Context, within time.Duration) {
	t.Helper()
	select {
	case <-ctx.Done():
	case <-time.After(within):
		t.Fatalf("the term's context did not end within %s", within)
	}
}

func TestOneLeaderAtATime(t *testing.T) {
	cli := client(t)
	prefix := "/" + t.Name() + "/"
	a := campaign(t, cli, prefix, "a:7070")
	ta := nextTerm(t, a, 10*time.Second)
	if ta.Epoch == 0 {
		t.Fatal("epoch 0 for an elected leader")
	}
	ctx := context.Background()
	if name, epoch, err := Leader(ctx, cli, prefix); err != nil || name != "a:7070" || epoch != ta.Epoch {
		t.Fatalf("Leader = %q, %d, %v; want a:7070, %d", name, epoch, err, ta.Epoch)
	}
	b := campaign(t, cli, prefix, "b:7070")
	select {
	case r := <-b.terms:
		t.Fatalf("b elected (epoch %d) while a leads", r.Epoch)
	case <-time.After(500 * time.Millisecond): // a negative check: b must not win in this time
	}
	close(ta.end) // a resigns
	tb := nextTerm(t, b, 10*time.Second)
	if tb.Epoch <= ta.Epoch {
		t.Fatalf("b's epoch %d is not above a's %d", tb.Epoch, ta.Epoch)
	}
	// a's guard no longer holds: a write conditioned on it fails.
	resp, err := cli.Txn(ctx).If(ta.Guard).Then(clientv3.OpPut(prefix+"x", "from a")).Commit()
	if err != nil || resp.Succeeded {
		t.Fatalf("a write guarded by a finished term: succeeded=%v, %v", resp != nil && resp.Succeeded, err)
	}
	resp, err = cli.Txn(ctx).If(tb.Guard).Then(clientv3.OpPut(prefix+"x", "from b")).Commit()
	if err != nil || !resp.Succeeded {
		t.Fatalf("a write guarded by the leading term failed: %v", err)
	}
}

func TestTermEndsWhenTheLeaseGoes(t *testing.T) {
	cli := client(t)
	prefix := "/" + t.Name() + "/"
	a := campaign(t, cli, prefix, "a")
	ta := nextTerm(t, a, 10*time.Second)
	b := campaign(t, cli, prefix, "b")
	// What a paused or cut-off leader's lease comes to: etcd forgets it.
	// Its key goes with it; its term must end, and b must be elected.
	get, err := cli.Get(context.Background(), ta.Key)
	if err != nil || len(get.Kvs) != 1 {
		t.Fatalf("read the leader's key: %v", err)
	}
	if _, err := cli.Revoke(context.Background(), clientv3.LeaseID(get.Kvs[0].Lease)); err != nil {
		t.Fatal(err)
	}
	ended(t, ta.ctx, 10*time.Second)
	tb := nextTerm(t, b, 10*time.Second)
	if tb.Epoch <= ta.Epoch {
		t.Fatalf("b's epoch %d is not above a's %d", tb.Epoch, ta.Epoch)
	}
	if cause := context.Cause(ta.ctx); cause == nil {
		t.Error("no cause for the end of the term")
	}
}

func TestTermEndsWhenTheKeyIsDeleted(t *testing.T) {
	cli := client(t)
	prefix := "/" + t.Name() + "/"
	a := campaign(t, cli, prefix, "a")
	ta := nextTerm(t, a, 10*time.Second)
	if _, err := cli.Delete(context.Background(), ta.Key); err != nil {
		t.Fatal(err)
	}
	ended(t, ta.ctx, 10*time.Second)
	// a campaigns again and wins a new term.
	ta2 := nextTerm(t, a, 10*time.Second)
	if ta2.Epoch <= ta.Epoch {
		t.Fatalf("the new term's epoch %d is not above %d", ta2.Epoch, ta.Epoch)
	}
}
