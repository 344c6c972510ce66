package etcdstore

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"slices"
	"strconv"

	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/controlplane/storecodec"
	"github.com/cutover-dev/cutover/pkg/errkind"
)

// ManifestPartSize is the size of the parts a manifest is split into,
// each its own key, each written in its own request (etcd refuses a
// request larger than --max-request-bytes, 1.5 MiB by default).
var ManifestPartSize = 1 << 20

func partKey(id string, n int) string { return fmt.Sprintf("%s/%06d", named(collParts, id), n) }

// PutRelease records a release with its canonical manifest bytes, unless
// it exists (same id, same content): its create time stays the first
// build's.
func (tx *Tx) PutRelease(r *model.Release, manifest []byte) error {
	if _, ok, err := tx.get(named(collReleases, r.ID)); err != nil || ok {
		return err
	}
	if !tx.writable {
		return fmt.Errorf("write of release %s in a read-only transaction: %w", r.ID, errkind.FailedPrecondition)
	}
	sum := sha256.Sum256(manifest)
	head := manifestHead{Size: len(manifest), SHA256: hex.EncodeToString(sum[:])}
	for off := 0; head.Parts == 0 || off < len(manifest); off += ManifestPartSize { // one part at least
		part := manifest[off:min(off+ManifestPartSize, len(manifest))]
		tx.ahead = append(tx.ahead, kv{partKey(r.ID, head.Parts), bytes.Clone(part)})
		head.Parts++
	}
	if err := putHead(tx, r.ID, head); err != nil {
		return err
	}
	if err := putRecord(tx, named(collReleases, r.ID), r, storecodec.EncodeRelease); err != nil {
		return err
	}
	return tx.put(named(collAppReleases, r.Application)+"/"+url.PathEscape(r.ID), []byte(strconv.FormatInt(r.CreateTime.UnixNano(), 10)))
}

// Release returns a release's metadata; NotFound if unknown.
func (tx *Tx) Release(id string) (*model.Release, error) {
	return getRecord(tx, named(collReleases, id), storecodec.DecodeRelease, fmt.Errorf("release %q does not exist: %w", id, errkind.NotFound))
}

// Manifest returns a copy of a release's canonical manifest bytes,
// reassembled from its parts and checked; NotFound if unknown.
func (tx *Tx) Manifest(id string) ([]byte, error) {
	head, err := getHead(tx, id)
	if err != nil {
		return nil, err
	}
	if head == nil {
		return nil, fmt.Errorf("release %q does not exist: %w", id, errkind.NotFound)
	}
	var m []byte
	if w := tx.pendingParts(id); w != nil {
		m = w
	} else {
		parts, err := tx.list(named(collParts, id)+"/", false)
		if err != nil {
			return nil, err
		}
		for _, p := range parts {
			m = append(m, p.val...)
		}
	}
	sum := sha256.Sum256(m)
	if len(m) != head.Size || hex.EncodeToString(sum[:]) != head.SHA256 {
		return nil, fmt.Errorf("manifest of release %s: its parts hold %d bytes that do not match its record (%d bytes, SHA-256 %s): %w",
			id, len(m), head.Size, head.SHA256, errkind.DataLoss)
	}
	return m, nil
}

// pendingParts returns the manifest of id that this transaction writes
// ahead, or nil.
func (tx *Tx) pendingParts(id string) []byte {
	prefix := named(collParts, id) + "/"
	var m []byte
	found := false
	for _, a := range tx.ahead {
		if len(a.key) > len(prefix) && a.key[:len(prefix)] == prefix {
			m, found = append(m, a.val...), true
		}
	}
	if found && m == nil {
		m = []byte{}
	}
	return m
}

// ReleasesOf returns an application's releases, newest first.
func (tx *Tx) ReleasesOf(app string) ([]*model.Release, error) {
	idx, err := tx.list(named(collAppReleases, app)+"/", false)
	if err != nil {
		return nil, err
	}
	var out []*model.Release
	for _, e := range idx {
		id, err := url.PathUnescape(e.key[len(named(collAppReleases, app))+1:])
		if err != nil {
			return nil, fmt.Errorf("index key %s: %w: %v", e.key, errkind.DataLoss, err)
		}
		r, err := tx.Release(id)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	slices.SortStableFunc(out, func(a, b *model.Release) int { return b.CreateTime.Compare(a.CreateTime) })
	return out, nil
}
