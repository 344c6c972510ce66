package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/cutover-dev/cutover/pkg/errkind"
)

// ChunkIDSize is the length of a chunk id (SHA-256).
const ChunkIDSize = 32

// HasChunk reports whether the chunk is stored.
func (t *Tx) HasChunk(id [ChunkIDSize]byte) bool {
	return t.tx.Bucket(bucketChunkIDs).Get(id[:]) != nil
}

// chunkData returns the stored data of a chunk (a slice of the memory map,
// valid during the transaction), or nil.
func (t *Tx) chunkData(id [ChunkIDSize]byte) []byte {
	seq := t.tx.Bucket(bucketChunkIDs).Get(id[:])
	if seq == nil {
		return nil
	}
	return t.tx.Bucket(bucketChunkDat).Get(seq)
}

// Chunk returns a copy of the chunk's data; errkind.NotFound if absent.
func (t *Tx) Chunk(id [ChunkIDSize]byte) ([]byte, error) {
	v := t.chunkData(id)
	if v == nil {
		return nil, fmt.Errorf("chunk %x is not stored: %w", id, errkind.NotFound)
	}
	return bytes.Clone(v), nil
}

// WriteChunk writes the chunk's data to w straight from the file's memory
// map (no copy on the heap). Every dropEvery bytes so written, it tells the
// kernel that the process no longer needs the pages of the map it has read
// (the page cache keeps them), so that writing a whole release out does not
// leave it in the agent's resident memory. errkind.NotFound if absent.
func (t *Tx) WriteChunk(id [ChunkIDSize]byte, w io.Writer) (int, error) {
	v := t.chunkData(id)
	if v == nil {
		return 0, fmt.Errorf("chunk %x is not stored: %w", id, errkind.NotFound)
	}
	n, err := w.Write(v)
	if !t.tx.Writable() && t.read.Add(int64(len(v))) >= dropEvery { // a writable transaction's values may be on the heap
		t.read.Store(0)
		dropMap(v, t.tx.DB().Info().Data, int(t.tx.Size()))
	}
	return n, err
}

// dropEvery is how many bytes WriteChunk writes between two drops of the map.
const dropEvery = 8 << 20

// PutChunk stores a chunk (a chunk already stored is left as it is). The
// caller has verified that id is data's hash.
func (t *Tx) PutChunk(id [ChunkIDSize]byte, data []byte) error {
	ids, dat := t.tx.Bucket(bucketChunkIDs), t.tx.Bucket(bucketChunkDat)
	if ids.Get(id[:]) != nil {
		return nil
	}
	dat.FillPercent = 1 // appended at the end: fill the pages
	return putChunk(ids, dat, id[:], data)
}

// putChunk appends data under the next sequence number of dat and indexes
// it under id in ids.
func putChunk(ids, dat *bolt.Bucket, id, data []byte) error {
	n, err := dat.NextSequence()
	if err != nil {
		return err
	}
	var seq [8]byte
	binary.BigEndian.PutUint64(seq[:], n)
	if err := dat.Put(seq[:], data); err != nil {
		return err
	}
	return ids.Put(bytes.Clone(id), seq[:])
}

// DeleteChunk removes a chunk (absent is fine).
func (t *Tx) DeleteChunk(id [ChunkIDSize]byte) error {
	ids := t.tx.Bucket(bucketChunkIDs)
	seq := ids.Get(id[:])
	if seq == nil {
		return nil
	}
	if err := t.tx.Bucket(bucketChunkDat).Delete(seq); err != nil {
		return err
	}
	return ids.Delete(id[:])
}

// ChunkIDs returns the ids of every stored chunk.
func (t *Tx) ChunkIDs() ([][ChunkIDSize]byte, error) {
	var ids [][ChunkIDSize]byte
	err := t.tx.Bucket(bucketChunkIDs).ForEach(func(k, _ []byte) error {
		if len(k) == ChunkIDSize {
			ids = append(ids, [ChunkIDSize]byte(k))
		}
		return nil
	})
	return ids, err
}

// ReleaseState is where a release is on this agent.
type ReleaseState string

// The release states.
const (
	// ReleaseStaging: the manifest is known, chunks are being fetched.
	ReleaseStaging ReleaseState = "staging"
	// ReleaseStaged: materialized under ROOT/<app>/releases/<id>/ and verified.
	ReleaseStaged ReleaseState = "staged"
)

// Release is one application's release on this agent.
type Release struct {
	// Application is the app's name.
	Application string `json:"application"`
	// ID is the release id (hex SHA-256 of Manifest).
	ID string `json:"id"`
	// Manifest is the canonical manifest bytes.
	Manifest []byte `json:"manifest"`
	// State is staging or staged.
	State ReleaseState `json:"state"`
	// Size is the total size of its regular files.
	Size int64 `json:"size"`
	// UpdateTime is when the record last changed.
	UpdateTime time.Time `json:"update_time"`
}

func releaseKey(app, id string) []byte { return []byte(app + "/" + id) }

// Release returns a release; errkind.NotFound if unknown.
func (t *Tx) Release(app, id string) (*Release, error) {
	v := t.tx.Bucket(bucketReleases).Get(releaseKey(app, id))
	if v == nil {
		return nil, fmt.Errorf("release %s of %q is not on this agent: %w", id, app, errkind.NotFound)
	}
	var r Release
	if err := json.Unmarshal(v, &r); err != nil {
		return nil, fmt.Errorf("release %s of %q: stored record is corrupt: %v: %w", id, app, err, errkind.DataLoss)
	}
	return &r, nil
}

// PutRelease creates or replaces a release record.
func (t *Tx) PutRelease(r *Release) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return t.tx.Bucket(bucketReleases).Put(releaseKey(r.Application, r.ID), b)
}

// DeleteRelease removes a release record (absent is fine).
func (t *Tx) DeleteRelease(app, id string) error {
	return t.tx.Bucket(bucketReleases).Delete(releaseKey(app, id))
}

// Releases returns every release record, ordered by app then id.
func (t *Tx) Releases() ([]*Release, error) {
	var out []*Release
	err := t.tx.Bucket(bucketReleases).ForEach(func(k, v []byte) error {
		var r Release
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("release %s: stored record is corrupt: %v: %w", k, err, errkind.DataLoss)
		}
		out = append(out, &r)
		return nil
	})
	return out, err
}

// ActivationState is where a deployment's activation is on this agent.
type ActivationState string

// The activation states.
const (
	// ActivationArmed: releases verified, `current.next` prepared beside
	// `current`; nothing running changed. Commit or disarm follows.
	ActivationArmed ActivationState = "armed"
	// ActivationDisarmed: was armed, then disarmed; nothing was swapped.
	ActivationDisarmed ActivationState = "disarmed"
	// ActivationRunning: journaled; swaps may have happened.
	ActivationRunning ActivationState = "activating"
	// ActivationActive: every app swapped and healthy.
	ActivationActive ActivationState = "active"
	// ActivationFailed: failed; every swapped app went back (see SwappedBack).
	ActivationFailed ActivationState = "failed"
	// ActivationRolledBack: was active, then undone by a rollback.
	ActivationRolledBack ActivationState = "rolled_back"
)

// AppActivation is one app's part of an activation.
type AppActivation struct {
	// Application is the app's name.
	Application string `json:"application"`
	// Previous is the release `current` pointed to before; empty if none.
	Previous string `json:"previous,omitempty"`
	// Target is the release to activate.
	Target string `json:"target"`
	// Swapped is set once `current` was swapped to Target (journaled before the swap).
	Swapped bool `json:"swapped,omitempty"`
}

// Activation is the journal entry of one deployment's activation.
type Activation struct {
	// Deployment is the deployment id.
	Deployment string `json:"deployment"`
	// State is where it is.
	State ActivationState `json:"state"`
	// Apps are the apps in activation order.
	Apps []AppActivation `json:"apps"`
	// SwapTime is when the first `current` was swapped; zero if none was.
	SwapTime time.Time `json:"swap_time,omitzero"`
	// SwappedBack says a failure swapped the apps back.
	SwappedBack bool `json:"swapped_back,omitempty"`
	// Error is why it failed.
	Error string `json:"error,omitempty"`
	// UpdateTime is when the entry last changed.
	UpdateTime time.Time `json:"update_time"`
}

// Activation returns a deployment's journal entry; errkind.NotFound if none.
func (t *Tx) Activation(deployment string) (*Activation, error) {
	v := t.tx.Bucket(bucketJournal).Get([]byte(deployment))
	if v == nil {
		return nil, fmt.Errorf("deployment %q was never activated on this agent: %w", deployment, errkind.NotFound)
	}
	var a Activation
	if err := json.Unmarshal(v, &a); err != nil {
		return nil, fmt.Errorf("journal entry of %q is corrupt: %v: %w", deployment, err, errkind.DataLoss)
	}
	return &a, nil
}

// PutActivation creates or replaces a journal entry.
func (t *Tx) PutActivation(a *Activation) error {
	b, err := json.Marshal(a)
	if err != nil {
		return err
	}
	return t.tx.Bucket(bucketJournal).Put([]byte(a.Deployment), b)
}

// Activations returns every journal entry, ordered by deployment id.
func (t *Tx) Activations() ([]*Activation, error) {
	var out []*Activation
	err := t.tx.Bucket(bucketJournal).ForEach(func(k, v []byte) error {
		var a Activation
		if err := json.Unmarshal(v, &a); err != nil {
			return fmt.Errorf("journal entry %s is corrupt: %v: %w", k, err, errkind.DataLoss)
		}
		out = append(out, &a)
		return nil
	})
	return out, err
}
