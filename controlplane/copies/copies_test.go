package copies

import (
	"context"
	"fmt"
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

// newPrefix is a prefix no other test, nor another run of this one, uses.
func newPrefix(t *testing.T) string { return fmt.Sprintf("/%s-%d/", t.Name(), time.Now().UnixNano()) }

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
	prefix := newPrefix(t)
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

// TestChangedSignals: a controller that comes and a release recorded after
// Changed returned each signal, and nothing signals before them.
func TestChangedSignals(t *testing.T) {
	cli := client(t)
	prefix := newPrefix(t)
	ctx, cancel := context.WithCancel(context.Background())
	a, b := New(cli, prefix, "a:1"), New(cli, prefix, "b:1")
	ch := a.Changed(ctx)
	for _, change := range []struct {
		what string
		do   func()
	}{
		{"a controller came", func() { live(t, cli, prefix, "b:1") }},
		{"a release was recorded", func() {
			if err := b.Hold(ctx, "r1"); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		select {
		case <-ch:
			t.Fatalf("a signal before %s", change.what)
		default:
		}
		change.do()
		select {
		case <-ch:
		case <-time.After(10 * time.Second):
			t.Fatalf("no signal within 10 s after %s", change.what)
		}
	}
	cancel()
	for range ch { // closed once ctx ended
	}
}
