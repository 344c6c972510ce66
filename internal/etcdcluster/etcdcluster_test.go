package etcdcluster

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestClusterSurvivesOneMember starts three members, writes, kills one,
// writes again through the others, starts it again and reads both writes
// from it.
func TestClusterSurvivesOneMember(t *testing.T) {
	bin := Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := Start(ctx, Config{Members: 3, Dir: t.TempDir(), Binary: bin})
	defer c.Close()
	if err != nil {
		t.Fatal(err)
	}
	client := func(endpoints ...string) *clientv3.Client {
		cl, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cl.Close() })
		return cl
	}
	all := client(c.Endpoints...)
	steps := []struct {
		name string
		do   func() error
	}{
		{"put a", func() error { _, err := all.Put(ctx, "a", "1"); return err }},
		{"stop member 0", func() error { return c.StopMember(0) }},
		{"put b through the others", func() error {
			_, err := client(c.Endpoints[1:]...).Put(ctx, "b", "2")
			return err
		}},
		{"start member 0", func() error { return c.StartMember(ctx, 0) }},
		{"read both from member 0", func() error {
			res, err := client(c.Endpoints[0]).Get(ctx, "", clientv3.WithFromKey())
			if err != nil {
				return err
			}
			if len(res.Kvs) != 2 {
				t.Errorf("member 0 holds %d keys after its restart, want 2", len(res.Kvs))
			}
			return nil
		}},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
	}
	if err := c.StopMember(3); err == nil {
		t.Error("StopMember(3) of a 3-member cluster did not fail")
	}
}
