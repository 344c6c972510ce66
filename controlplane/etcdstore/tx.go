package etcdstore

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cutover-dev/cutover/pkg/errkind"
)

// Tx is a transaction on the etcd store: reads at one revision, writes
// buffered until the commit.
type Tx struct {
	s        *Store
	writable bool
	// rev is the revision every read is served at; 0 until the first.
	rev int64
	// read holds the mod revision of every key read (0: read as missing).
	read map[string]int64
	// ranges holds the prefixes listed.
	ranges map[string]bool
	// writes holds the buffered writes; a nil value deletes the key.
	writes map[string][]byte
	// ahead holds values written before the transaction, each in its own
	// request (manifest parts).
	ahead []kv
}

type kv struct {
	key string
	val []byte
}

func (s *Store) newTx(writable bool) *Tx {
	return &Tx{s: s, writable: writable, read: map[string]int64{}, ranges: map[string]bool{}, writes: map[string][]byte{}}
}

// key is the full etcd key of a key relative to the prefix.
func (tx *Tx) key(rel string) string { return tx.s.cfg.Prefix + rel }

// collection is the first segment of a relative key.
func collection(rel string) string {
	c, _, _ := strings.Cut(rel, "/")
	return c
}

// deletedMarker is the relative key touched by deletions in coll.
func deletedMarker(coll string) string { return "meta/deleted/" + coll }

// get reads the key rel: the buffered write if there is one, else etcd's
// value at the transaction's revision.
func (tx *Tx) get(rel string) ([]byte, bool, error) {
	if v, ok := tx.writes[rel]; ok {
		return v, v != nil, nil
	}
	var res *clientv3.GetResponse
	err := tx.s.request(func(ctx context.Context) (err error) {
		res, err = tx.s.cfg.Client.Get(ctx, tx.key(rel), tx.atRev()...)
		return err
	})
	if err != nil {
		return nil, false, err
	}
	tx.pinRev(res.Header.Revision)
	if len(res.Kvs) == 0 {
		tx.noteRead(rel, 0)
		return nil, false, nil
	}
	tx.noteRead(rel, res.Kvs[0].ModRevision)
	return res.Kvs[0].Value, true, nil
}

// list returns the keys (relative) and values under the relative prefix
// rel, sorted by key, the transaction's writes included. With last, only
// the last one.
func (tx *Tx) list(rel string, last bool) ([]kv, error) {
	opts := append(tx.atRev(), clientv3.WithPrefix())
	if last && !tx.deletesUnder(rel) { // else etcd's last key may be one this transaction deleted: list all
		opts = append(opts, clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend), clientv3.WithLimit(1))
	}
	var res *clientv3.GetResponse
	err := tx.s.request(func(ctx context.Context) (err error) {
		res, err = tx.s.cfg.Client.Get(ctx, tx.key(rel), opts...)
		return err
	})
	if err != nil {
		return nil, err
	}
	tx.pinRev(res.Header.Revision)
	tx.ranges[rel] = true
	merged := map[string][]byte{}
	for _, e := range res.Kvs {
		merged[strings.TrimPrefix(string(e.Key), tx.s.cfg.Prefix)] = e.Value
	}
	for k, v := range tx.writes {
		if strings.HasPrefix(k, rel) {
			merged[k] = v
		}
	}
	var out []kv
	for _, k := range slices.Sorted(maps.Keys(merged)) {
		if merged[k] != nil {
			out = append(out, kv{k, merged[k]})
		}
	}
	if last && len(out) > 1 {
		out = out[len(out)-1:]
	}
	return out, nil
}

// deletesUnder says whether the transaction deletes a key under rel.
func (tx *Tx) deletesUnder(rel string) bool {
	for k, v := range tx.writes {
		if v == nil && strings.HasPrefix(k, rel) {
			return true
		}
	}
	return false
}

func (tx *Tx) atRev() []clientv3.OpOption {
	if tx.rev == 0 {
		return nil
	}
	return []clientv3.OpOption{clientv3.WithRev(tx.rev)}
}

func (tx *Tx) pinRev(rev int64) {
	if tx.rev == 0 {
		tx.rev = rev
	}
}

func (tx *Tx) noteRead(rel string, modRev int64) {
	if _, ok := tx.read[rel]; !ok {
		tx.read[rel] = modRev
	}
}

// put buffers a write of rel.
func (tx *Tx) put(rel string, val []byte) error {
	if !tx.writable {
		return fmt.Errorf("write of %s in a read-only transaction: %w", rel, errkind.FailedPrecondition)
	}
	if val == nil {
		val = []byte{}
	}
	tx.writes[rel] = bytes.Clone(val)
	return nil
}

// del buffers a deletion of rel.
func (tx *Tx) del(rel string) error {
	if !tx.writable {
		return fmt.Errorf("deletion of %s in a read-only transaction: %w", rel, errkind.FailedPrecondition)
	}
	tx.writes[rel] = nil
	return nil
}

// compares returns the comparisons of what the transaction read: one per
// key, or, when that makes more than max, one range per collection.
func (tx *Tx) compares(max int) []clientv3.Cmp {
	var cmps []clientv3.Cmp
	colls := map[string]bool{}
	for _, rel := range slices.Sorted(maps.Keys(tx.ranges)) {
		cmps = append(cmps, tx.rangeCompare(rel)...)
	}
	for _, rel := range slices.Sorted(maps.Keys(tx.read)) {
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(tx.key(rel)), "=", tx.read[rel]))
		colls[collection(rel)] = true
	}
	if len(cmps) <= max {
		return cmps
	}
	cmps = cmps[:0]
	for rel := range tx.ranges {
		colls[collection(rel)] = true
	}
	for _, c := range slices.Sorted(maps.Keys(colls)) {
		cmps = append(cmps, tx.rangeCompare(c+"/")...)
	}
	return cmps
}

// rangeCompare holds when no key under rel was created, changed or
// deleted after the transaction's revision.
func (tx *Tx) rangeCompare(rel string) []clientv3.Cmp {
	return []clientv3.Cmp{
		clientv3.Compare(clientv3.ModRevision(tx.key(rel)), "<", tx.rev+1).WithPrefix(),
		clientv3.Compare(clientv3.ModRevision(tx.key(deletedMarker(collection(rel)))), "<", tx.rev+1),
	}
}

// commit writes the values to write ahead, then the buffered writes in one
// etcd transaction guarded by the reads and the store's guards.
func (tx *Tx) commit() error {
	if len(tx.writes) == 0 {
		return nil
	}
	max := tx.s.cfg.MaxTxnOps
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
	if len(ops) > max {
		return fmt.Errorf("the transaction writes %d keys, but etcd takes at most %d operations in one (--max-txn-ops; etcdstore.Config.MaxTxnOps); nothing was written: %w",
			len(ops), max, errkind.ResourceExhausted)
	}
	guards := tx.s.currentGuards()
	cmps := append(tx.compares(max-len(guards)), guards...)
	if len(cmps) > max {
		return fmt.Errorf("the transaction needs %d comparisons, but etcd takes at most %d in one (--max-txn-ops); nothing was written: %w",
			len(cmps), max, errkind.ResourceExhausted)
	}
	for _, a := range tx.ahead {
		if err := tx.s.request(func(ctx context.Context) error {
			_, err := tx.s.cfg.Client.Put(ctx, tx.key(a.key), string(a.val))
			return err
		}); err != nil {
			return fmt.Errorf("write %s ahead of the transaction: %w", a.key, err)
		}
	}
	var res *clientv3.TxnResponse
	err := tx.s.request(func(ctx context.Context) (err error) {
		res, err = tx.s.cfg.Client.Txn(ctx).If(cmps...).Then(ops...).Commit()
		return err
	})
	if err != nil {
		return fmt.Errorf("commit to etcd (it may or may not have been applied): %w", err)
	}
	if !res.Succeeded {
		return tx.aborted(guards)
	}
	return nil
}

// aborted says why a commit's comparisons failed.
func (tx *Tx) aborted(guards []clientv3.Cmp) error {
	if len(guards) > 0 {
		var res *clientv3.TxnResponse
		err := tx.s.request(func(ctx context.Context) (err error) {
			res, err = tx.s.cfg.Client.Txn(ctx).If(guards...).Commit()
			return err
		})
		if err == nil && !res.Succeeded {
			return fmt.Errorf("this controller's guard (its leadership) no longer holds in etcd; nothing was written: %w", errkind.Aborted)
		}
	}
	return fmt.Errorf("what the transaction read changed in etcd before it committed (another controller wrote it); nothing was written; retry: %w", errkind.Aborted)
}
