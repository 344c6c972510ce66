package etcdstore

import (
	"context"
	"sync/atomic"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cutover-dev/cutover/controlplane/model"
)

// lossyKV is the real KV whose next transactions lose their answers: a
// lost commit is applied (after: true) or not (after: false), and the
// caller gets Unavailable either way, as when an etcd leader dies.
type lossyKV struct {
	clientv3.KV
	lose  atomic.Int32
	after bool
}

func (k *lossyKV) Txn(ctx context.Context) clientv3.Txn {
	return &lossyTxn{Txn: k.KV.Txn(ctx), kv: k}
}

type lossyTxn struct {
	clientv3.Txn
	kv *lossyKV
}

func (t *lossyTxn) If(cs ...clientv3.Cmp) clientv3.Txn { t.Txn = t.Txn.If(cs...); return t }
func (t *lossyTxn) Then(ops ...clientv3.Op) clientv3.Txn {
	t.Txn = t.Txn.Then(ops...)
	return t
}

func (t *lossyTxn) Commit() (*clientv3.TxnResponse, error) {
	if t.kv.lose.Add(-1) < 0 {
		return t.Txn.Commit()
	}
	if t.kv.after {
		if _, err := t.Txn.Commit(); err != nil {
			return nil, err
		}
	}
	return nil, status.Error(codes.Unavailable, "injected: the answer was lost")
}

// TestLostAnswers: a commit whose answer is lost is sent again and applied
// exactly once, whether the lost copy was applied or not.
func TestLostAnswers(t *testing.T) {
	cases := []struct {
		name  string
		lose  int32
		after bool
	}{
		{"lost before etcd applied it", 1, false},
		{"lost after etcd applied it", 1, true},
		{"three answers lost, the first copy applied", 3, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cli := client(t)
			kv := &lossyKV{KV: cli.KV, after: c.after}
			s, err := New(Config{Client: cli, KV: kv, Prefix: newPrefix()})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Update(func(tx model.Tx) error {
				return tx.PutDeployment(&model.Deployment{ID: "d-1", Environment: "production"})
			}); err != nil {
				t.Fatal(err)
			}
			kv.lose.Store(c.lose)
			if err := s.Update(appendHistory("once", func() {})); err != nil {
				t.Fatalf("update with lost answers: %v", err)
			}
			if err := s.Update(appendHistory("next", func() {})); err != nil {
				t.Fatalf("the next update: %v", err)
			}
			if err := s.View(func(tx model.Tx) error {
				d, err := tx.Deployment("d-1")
				if err == nil && len(d.History) != 2 {
					t.Errorf("history %+v, want the two updates once each", d.History)
				}
				return err
			}); err != nil {
				t.Fatal(err)
			}
		})
	}
}
