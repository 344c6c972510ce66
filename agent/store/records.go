package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	"github.com/cutover-dev/cutover/pkg/errkind"
)

// Progress returns the staging progress bitmap of a release (bit i, i.e.
// byte i/8, bit i%8, set: chunk position i is written and durable), and
// whether there is one. The slice is a copy.
func (t *Tx) Progress(app, id string) ([]byte, bool) {
	v := t.tx.Bucket(bucketProgress).Get(releaseKey(app, id))
	if v == nil {
		return nil, false
	}
	return bytes.Clone(v), true
}

// PutProgress records a release's staging progress bitmap.
func (t *Tx) PutProgress(app, id string, bits []byte) error {
	return t.tx.Bucket(bucketProgress).Put(releaseKey(app, id), bytes.Clone(bits))
}

// DeleteProgress removes a release's progress bitmap (absent is fine).
func (t *Tx) DeleteProgress(app, id string) error {
	return t.tx.Bucket(bucketProgress).Delete(releaseKey(app, id))
}

// ReleaseState is where a release is on this agent.
type ReleaseState string

// The release states.
const (
	// ReleaseStaging: the manifest is known, its files are being filled
	// (see Progress).
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
	// Manifest is the canonical manifest bytes (kept as they are in their
	// own bucket, not in the JSON record).
	Manifest []byte `json:"-"`
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
	return t.release(releaseKey(app, id), v)
}

// release decodes the record v stored under key, with its manifest.
func (t *Tx) release(key, v []byte) (*Release, error) {
	r, err := decodeRelease(key, v)
	if err != nil {
		return nil, err
	}
	r.Manifest = bytes.Clone(t.tx.Bucket(bucketManifest).Get(key))
	return r, nil
}

// decodeRelease decodes the record v stored under key, without its
// manifest.
func decodeRelease(key, v []byte) (*Release, error) {
	var r Release
	if err := json.Unmarshal(v, &r); err != nil {
		return nil, fmt.Errorf("release %s: stored record is corrupt: %v: %w", key, err, errkind.DataLoss)
	}
	return &r, nil
}

// ReleaseRecord returns a release's record without its manifest (Manifest
// nil): a manifest is up to 32 MB, copied by Release; errkind.NotFound if
// unknown.
func (t *Tx) ReleaseRecord(app, id string) (*Release, error) {
	v := t.tx.Bucket(bucketReleases).Get(releaseKey(app, id))
	if v == nil {
		return nil, fmt.Errorf("release %s of %q is not on this agent: %w", id, app, errkind.NotFound)
	}
	return decodeRelease(releaseKey(app, id), v)
}

// ManifestBytes returns a release's canonical manifest bytes (nil if
// unknown) without copying them: they are valid only until the
// transaction ends, and must not be modified. For reading a manifest
// (decoding it) where Release would copy it first.
func (t *Tx) ManifestBytes(app, id string) []byte {
	return t.tx.Bucket(bucketManifest).Get(releaseKey(app, id))
}

// SetReleaseState changes a release's state and update time, leaving its
// manifest as it is (PutRelease writes the manifest again: megabytes for
// a large release); errkind.NotFound if unknown.
func (t *Tx) SetReleaseState(app, id string, state ReleaseState, at time.Time) error {
	r, err := t.ReleaseRecord(app, id)
	if err != nil {
		return err
	}
	r.State, r.UpdateTime = state, at
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return t.tx.Bucket(bucketReleases).Put(releaseKey(app, id), b)
}

// PutRelease creates or replaces a release record.
func (t *Tx) PutRelease(r *Release) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	key := releaseKey(r.Application, r.ID)
	if err := t.tx.Bucket(bucketManifest).Put(key, bytes.Clone(r.Manifest)); err != nil {
		return err
	}
	return t.tx.Bucket(bucketReleases).Put(key, b)
}

// DeleteRelease removes a release record (absent is fine).
func (t *Tx) DeleteRelease(app, id string) error {
	if err := t.tx.Bucket(bucketManifest).Delete(releaseKey(app, id)); err != nil {
		return err
	}
	return t.tx.Bucket(bucketReleases).Delete(releaseKey(app, id))
}

// Releases returns every release record, ordered by app then id.
func (t *Tx) Releases() ([]*Release, error) {
	return t.releases(t.release)
}

// ReleaseRecords returns every release record without its manifest
// (Manifest nil), ordered by app then id: what Releases returns without
// copying every manifest (ManifestBytes reads one).
func (t *Tx) ReleaseRecords() ([]*Release, error) {
	return t.releases(decodeRelease)
}

func (t *Tx) releases(decode func(k, v []byte) (*Release, error)) ([]*Release, error) {
	var out []*Release
	err := t.tx.Bucket(bucketReleases).ForEach(func(k, v []byte) error {
		r, err := decode(k, v)
		out = append(out, r)
		return err
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

// ActivationID names an activation: a deployment's own (its stage 2), or
// one attempt of a rollback by command of it, which is an activation of
// its own (a retry is a new attempt).
type ActivationID struct {
	// Deployment is the deployment's id.
	Deployment string `json:"deployment"`
	// RollbackAttempt is 0 for the deployment's own activation, and n > 0
	// for its n-th rollback by command.
	RollbackAttempt int `json:"rollback_attempt,omitempty"`
}

// String says which activation id is, for logs and messages.
func (id ActivationID) String() string {
	if id.RollbackAttempt == 0 {
		return id.Deployment
	}
	return fmt.Sprintf("%s (rollback by command %d)", id.Deployment, id.RollbackAttempt)
}

// journalKey is the key of id's entry in the journal bucket: the
// deployment's id, followed for a rollback by command by 0x00 and the
// attempt, uint32 big-endian (deployment ids never hold 0x00).
func journalKey(id ActivationID) []byte {
	k := []byte(id.Deployment)
	if id.RollbackAttempt == 0 {
		return k
	}
	return binary.BigEndian.AppendUint32(append(k, 0), uint32(id.RollbackAttempt))
}

// Activation is the journal entry of one activation.
type Activation struct {
	// ActivationID says which.
	ActivationID
	// State is where it is.
	State ActivationState `json:"state"`
	// Apps are the apps in activation order.
	Apps []AppActivation `json:"apps"`
	// SwapTime is when the first `current` was swapped; zero if none was.
	SwapTime time.Time `json:"swap_time,omitzero"`
	// Overlap is how long old and new processes served side by side (apps
	// with run.listen; the longest of them); SwapTime is then when the old
	// ones were told to stop.
	Overlap time.Duration `json:"overlap,omitzero"`
	// SwappedBack says a failure swapped the apps back.
	SwappedBack bool `json:"swapped_back,omitempty"`
	// Error is why it failed.
	Error string `json:"error,omitempty"`
	// UpdateTime is when the entry last changed.
	UpdateTime time.Time `json:"update_time"`
}

// Activation returns an activation's journal entry; errkind.NotFound if none.
func (t *Tx) Activation(id ActivationID) (*Activation, error) {
	v := t.tx.Bucket(bucketJournal).Get(journalKey(id))
	if v == nil {
		return nil, fmt.Errorf("deployment %s was never activated on this agent: %w", id, errkind.NotFound)
	}
	var a Activation
	if err := json.Unmarshal(v, &a); err != nil {
		return nil, fmt.Errorf("journal entry of %s is corrupt: %v: %w", id, err, errkind.DataLoss)
	}
	return &a, nil
}

// PutActivation creates or replaces a journal entry.
func (t *Tx) PutActivation(a *Activation) error {
	b, err := json.Marshal(a)
	if err != nil {
		return err
	}
	return t.tx.Bucket(bucketJournal).Put(journalKey(a.ActivationID), b)
}

// Activations returns every journal entry, ordered by deployment id (a
// deployment's own activation before its rollbacks by command).
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
