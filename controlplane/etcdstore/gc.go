package etcdstore

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/controlplane/store"
	"github.com/cutover-dev/cutover/pkg/manifest"
)

// gcOps is how many deletions one transaction of CollectGarbage makes at
// most, below the default --max-txn-ops with room for the deletion markers.
const gcOps = 100

// CollectGarbage deletes the releases that nothing needs any more (the
// rule of store.UnneededReleases), in transactions of at most gcOps
// deletions, then every chunk of chunks that no remaining manifest
// references. It holds the store's update lock throughout, so that no
// update of this process (a prepare that begins a build, whose chunks are
// stored before its release) runs between the two. Only one controller
// (the leader) may collect.
func (s *Store) CollectGarbage(keep int, chunks *store.Store) (store.Collected, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var c store.Collected
	for {
		tx := s.newTx(true)
		rs, building, err := store.UnneededReleases(tx, keep)
		if err != nil || building {
			c.Skipped = building
			return c, err
		}
		n, err := tx.deleteReleases(rs)
		if err == nil {
			err = tx.commit()
		}
		if err != nil {
			return c, fmt.Errorf("delete unneeded releases: %w", err)
		}
		c.Releases += n
		if n == len(rs) {
			break
		}
	}
	if err := s.sweepParts(); err != nil {
		return c, err
	}
	used := map[manifest.ChunkID]bool{}
	if err := s.View(func(mtx model.Tx) error {
		tx := mtx.(*Tx)
		heads, err := tx.list(collManifests+"/", false)
		if err != nil {
			return err
		}
		for _, h := range heads {
			id, err := url.PathUnescape(strings.TrimPrefix(h.key, collManifests+"/"))
			if err != nil {
				return err
			}
			raw, err := tx.Manifest(id)
			if err != nil {
				return err
			}
			m, err := manifest.Decode(raw)
			if err != nil {
				return fmt.Errorf("manifest of release %s: %w; no chunk was deleted", id, err)
			}
			for _, cid := range m.ChunkIDs() {
				used[cid] = true
			}
		}
		return nil
	}); err != nil {
		return c, err
	}
	var err error
	c.Chunks, c.ChunkBytes, err = chunks.DeleteChunksExcept(used)
	return c, err
}

// deleteReleases buffers the deletion of the first releases of rs that
// fit in one transaction, and says how many.
func (tx *Tx) deleteReleases(rs []*model.Release) (int, error) {
	ops := 0
	for i, r := range rs {
		head, err := getHead(tx, r.ID)
		if err != nil {
			return i, err
		}
		parts := 0
		if head != nil {
			parts = head.Parts
		}
		if ops += 3 + parts; ops > gcOps && i > 0 {
			return i, nil
		}
		for p := range parts {
			if err := tx.del(partKey(r.ID, p)); err != nil {
				return i, err
			}
		}
		for _, k := range []string{named(collReleases, r.ID), named(collManifests, r.ID), named(collAppReleases, r.Application) + "/" + url.PathEscape(r.ID)} {
			if err := tx.del(k); err != nil {
				return i, err
			}
		}
	}
	return len(rs), nil
}

// sweepParts deletes the manifest parts of releases that were never
// recorded: parts are written ahead of the transaction that records their
// release, and stay behind when it fails. The caller holds s.mu, so no
// release of this process is between the two.
func (s *Store) sweepParts() error {
	var res *clientv3.GetResponse
	if err := s.request(func(ctx context.Context) (err error) {
		res, err = s.cfg.KV.Get(ctx, s.cfg.Prefix+collParts+"/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
		return err
	}); err != nil {
		return err
	}
	byRelease := map[string][]string{}
	for _, k := range res.Kvs {
		rel := strings.TrimPrefix(string(k.Key), s.cfg.Prefix)
		escaped, _, _ := strings.Cut(strings.TrimPrefix(rel, collParts+"/"), "/")
		byRelease[escaped] = append(byRelease[escaped], rel)
	}
	for escaped, parts := range byRelease {
		for len(parts) > 0 {
			tx := s.newTx(true)
			// Read as missing: the deletion aborts if the release is recorded meanwhile.
			if _, recorded, err := tx.get(collManifests + "/" + escaped); err != nil || recorded {
				break
			}
			n := min(len(parts), gcOps)
			for _, p := range parts[:n] {
				if err := tx.del(p); err != nil {
					return err
				}
			}
			if err := tx.commit(); err != nil {
				return fmt.Errorf("delete the manifest parts of unrecorded release %s: %w", escaped, err)
			}
			parts = parts[n:]
		}
	}
	return nil
}
