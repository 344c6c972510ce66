package etcdstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cutover-dev/cutover/pkg/errkind"
	"github.com/cutover-dev/cutover/pkg/poll"
)

// A commit whose answer is lost (the etcd leader died, a timeout) may or
// may not have been applied, and may still be applied later. So that it
// can be sent again safely, every transaction of a store also writes a
// nonce to the store's own key, txn/<store id>, and requires that key's
// mod revision to be the one the store's last commit left: of two copies
// of one transaction at most one applies, and no copy applies after a
// later transaction. After a lost answer the store waits for etcd, reads
// its key: its nonce there means the transaction was applied; otherwise it
// sends the same transaction again (fn is not run again), for up to
// Config.RequestTimeout.

// newStoreID names a store's txn key.
func newStoreID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// txnKey is the store's own key.
func (s *Store) txnKey() string { return s.cfg.Prefix + "txn/" + s.id }

// commit writes the values to write ahead, then the buffered writes in one
// etcd transaction guarded by the reads, the store's guards and its txn
// key.
func (tx *Tx) commit() error {
	if len(tx.writes) == 0 {
		return nil
	}
	s, max := tx.s, tx.s.cfg.MaxTxnOps
	var ops []clientv3.Op
	markers := map[string]bool{}
	for _, rel := range slices.Sorted(maps.Keys(tx.writes)) {
		if v := tx.writes[rel]; v != nil {
			ops = append(ops, clientv3.OpPut(tx.key(rel), string(v)))
			continue
		}
		ops = append(ops, clientv3.OpDelete(tx.key(rel)))
		markers[collection(rel)] = true
	}
	for c := range markers {
		ops = append(ops, clientv3.OpPut(tx.key(deletedMarker(c)), ""))
	}
	nonce := newStoreID()
	ops = append(ops, clientv3.OpPut(s.txnKey(), nonce))
	if len(ops) > max {
		return fmt.Errorf("the transaction writes %d keys (the store's txn key included), but etcd takes at most %d operations in one (--max-txn-ops; etcdstore.Config.MaxTxnOps); nothing was written: %w",
			len(ops), max, errkind.ResourceExhausted)
	}
	guards := s.currentGuards()
	cmps := append(tx.compares(max-len(guards)-1), guards...)
	cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(s.txnKey()), "=", s.txnRev))
	if len(cmps) > max {
		return fmt.Errorf("the transaction needs %d comparisons, but etcd takes at most %d in one (--max-txn-ops); nothing was written: %w",
			len(cmps), max, errkind.ResourceExhausted)
	}
	for _, a := range tx.ahead {
		if err := s.request(func(ctx context.Context) error {
			_, err := s.cfg.KV.Put(ctx, tx.key(a.key), string(a.val))
			return err
		}); err != nil {
			return fmt.Errorf("write %s ahead of the transaction: %w", a.key, err)
		}
	}
	var lost error // the error of the first try whose answer was lost
	err := poll.Until(s.ctx, s.cfg.RequestTimeout, func() error {
		if lost != nil {
			applied, err := s.applied(nonce)
			if err != nil || applied {
				return err
			}
		}
		var res *clientv3.TxnResponse
		err := s.attempt(func(ctx context.Context) (err error) {
			res, err = s.cfg.KV.Txn(ctx).If(cmps...).Then(ops...).Commit()
			return err
		})
		switch {
		case errors.Is(err, errkind.Unavailable):
			if lost == nil {
				lost = err
			}
			return err // wait for etcd, then look
		case err != nil:
			return poll.Permanent(err)
		case res.Succeeded:
			s.txnRev = res.Header.Revision
			return nil
		case lost != nil: // an earlier copy may have been applied since
			if applied, err := s.applied(nonce); err != nil || applied {
				return err
			}
		}
		return poll.Permanent(tx.aborted(guards))
	})
	if err != nil && errors.Is(err, errkind.Unavailable) {
		return fmt.Errorf("commit to etcd (it may or may not have been applied): %w", err)
	}
	return err
}

// applied reads the store's txn key and says whether it holds nonce (the
// transaction that wrote it was applied); it records the key's revision.
func (s *Store) applied(nonce string) (bool, error) {
	var res *clientv3.GetResponse
	if err := s.request(func(ctx context.Context) (err error) {
		res, err = s.cfg.KV.Get(ctx, s.txnKey())
		return err
	}); err != nil {
		return false, err
	}
	if len(res.Kvs) == 1 && string(res.Kvs[0].Value) == nonce {
		s.txnRev = res.Kvs[0].ModRevision
		return true, nil
	}
	return false, nil
}
