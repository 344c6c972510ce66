package etcdstore

import (
	"context"
	"fmt"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/internal/etcdcluster"
)

// TestOneMemberDown: with one member of three killed, then started again,
// every update and view goes on (the client uses the others; an update
// whose answer a killed leader took is sent again), none lost or applied
// twice. It logs how long each step took (killing the leader costs one
// update about AttemptTimeout).
func TestOneMemberDown(t *testing.T) {
	bin := etcdcluster.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	e, err := etcdcluster.Start(ctx, etcdcluster.Config{Members: 3, Dir: t.TempDir(), Binary: bin})
	defer e.Close()
	if err != nil {
		t.Fatal(err)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: e.Endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	s, err := New(Config{Client: cli})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	put := func(when string) {
		t.Helper()
		for range 20 {
			n++
			if err := s.Update(func(tx model.Tx) error { return tx.PutAgent(&model.Agent{Name: fmt.Sprintf("fe-%03d", n)}) }); err != nil {
				t.Fatalf("%s: update %d: %v", when, n, err)
			}
		}
	}
	steps := []struct {
		name string
		do   func() error
	}{
		{"all up", func() error { put("all up"); return nil }},
		{"kill member 0", func() error { return e.StopMember(0) }},
		{"one down", func() error { put("member 0 down"); return nil }},
		{"kill member 1 instead", func() error {
			if err := e.StartMember(ctx, 0); err != nil {
				return err
			}
			return e.StopMember(1)
		}},
		{"another down", func() error { put("member 1 down"); return nil }},
		{"all up again", func() error { return e.StartMember(ctx, 1) }},
	}
	for _, st := range steps {
		start := time.Now()
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		t.Logf("%s: %v", st.name, time.Since(start).Round(time.Millisecond))
	}
	if err := s.View(func(tx model.Tx) error {
		as, err := tx.Agents()
		if len(as) != n {
			t.Errorf("%d agents stored after %d updates", len(as), n)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
}
