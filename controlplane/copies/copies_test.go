package copies

import (
	"context"
	"os"
	"slices"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cutover-dev/cutover/controlplane/leader"
	"github.com/cutover-dev/cutover/internal/etcdcluster"
)

var cluster *etcdcluster.Cluster

func TestMain(m *testing.M) {
	os.Exit(etcdcluster.Main(m, 1, func(c *etcdcluster.Cluster) { cluster = c }))
}

func client(t *testing.T) *clientv3.Client { return etcdcluster.Client(t, cluster) }

// live makes name a live controller under prefix as the election does (a
// key under election/ on a lease, the name as its value), and returns the
// lease that ends it.
func live(t *testing.T, cli *clientv3.Client, prefix, name string) clientv3.LeaseID {
	t.Helper()
	ctx := context.Background()
	l, err := cli.Grant(ctx, 60)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, prefix+leader.KeyPrefix+name+"-key", name, clientv3.WithLease(l.ID)); err != nil {
		t.Fatal(err)
	}
	return l.ID
}

func TestLacking(t *testing.T) {
	cli := client(t)
	ctx := context.Background()
	prefix := "/" + t.Name() + "/"
	a, b, c := New(cli, prefix, "a:1"), New(cli, prefix, "b:1"), New(cli, prefix, "c:1")
	live(t, cli, prefix, "a:1")
	live(t, cli, prefix, "b:1")
	leaseC := live(t, cli, prefix, "c:1")
	want := func(releases []string, lacking ...string) {
		t.Helper()
		got, err := a.Lacking(ctx, releases)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, lacking) {
			t.Fatalf("Lacking(%v) = %v, want %v", releases, got, lacking)
		}
	}
	want([]string{"r1"}, "b:1", "c:1") // a itself is never lacking
	for _, h := range []func() error{
		func() error { return b.Hold(ctx, "r1") },
		func() error { return c.Hold(ctx, "r1") },
		func() error { return c.Hold(ctx, "r2") },
	} {
		if err := h(); err != nil {
			t.Fatal(err)
		}
	}
	want([]string{"r1"})
	want([]string{"r1", "r2"}, "b:1") // every release, not one of them
	want(nil)

	if err := c.Reset(ctx); err != nil { // c restarted: it holds nothing it has not checked
		t.Fatal(err)
	}
	want([]string{"r1"}, "c:1")
	if _, err := cli.Revoke(ctx, leaseC); err != nil { // c is gone: nobody waits for it
		t.Fatal(err)
	}
	want([]string{"r1"})
}

func TestChangedSignals(t *testing.T) {
	cli := client(t)
	prefix := "/" + t.Name() + "/"
	ctx, cancel := context.WithCancel(context.Background())
	a, b := New(cli, prefix, "a:1"), New(cli, prefix, "b:1")
	ch := a.Changed(ctx)
	// A watch that has begun is known only by what it receives: put until
	// one signal came, then drain, then expect each change to signal.
	for got := false; !got; {
		if err := b.Hold(ctx, "warmup"); err != nil {
			t.Fatal(err)
		}
		select {
		case <-ch:
			got = true
		case <-time.After(100 * time.Millisecond): // a put before the watch started: put again
		}
	}
	for _, change := range []func(){
		func() { live(t, cli, prefix, "b:1") },
		func() {
			if err := b.Hold(ctx, "r1"); err != nil {
				t.Error(err)
			}
		},
	} {
		for len(ch) > 0 {
			<-ch
		}
		change()
		<-ch
	}
	cancel()
	for range ch { // closed once ctx ended
	}
}
