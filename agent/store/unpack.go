package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/cutover-dev/cutover/pkg/journalkey"
)

// Migration 4 → 5. Agents of schema 4 journaled the activation of a
// rollback by command under the packed key "<id>~rollback.<n>"
// (pkg/journalkey), which was also the entry's deployment, and the
// commit's validate hooks under "validate:<id>~rollback.<n>"; a hook run
// of such a rollback's hooks command held it as its deployment. The
// attempt is now a field of its own (ActivationID), and the keys say it
// in their own form (journalKey, ValidateKey), so that an agent upgraded
// in place still finds the activation it armed, committed or rolled back,
// and the hooks it ran, under the keys a resent command asks for.

// unpackRollbackKeys is migration 4 → 5.
func unpackRollbackKeys(tx *bolt.Tx) error {
	if err := unpackJournal(tx.Bucket(bucketJournal)); err != nil {
		return err
	}
	return unpackHookRuns(tx.Bucket(bucketHookRuns))
}

// move is an entry to write again: removed from key old, value put
// under key new.
type move struct {
	old, new []byte
	value    any
}

// unpackJournal moves every entry under a packed key to its ActivationID's key.
func unpackJournal(b *bolt.Bucket) error {
	var moves []move
	err := b.ForEach(func(k, v []byte) error {
		id := unpackID(string(k))
		if id.RollbackAttempt == 0 {
			return nil
		}
		var a Activation
		if err := json.Unmarshal(v, &a); err != nil {
			return fmt.Errorf("journal entry %q of schema 4: %w", k, err)
		}
		a.ActivationID = id
		moves = append(moves, move{bytes.Clone(k), journalKey(id), &a})
		return nil
	})
	if err != nil {
		return err
	}
	return apply(b, moves)
}

// unpackHookRuns rewrites every hook run of a rollback by command: its
// deployment becomes an ActivationID, and a validate key moves to
// ValidateKey's form.
func unpackHookRuns(b *bolt.Bucket) error {
	var moves []move
	err := b.ForEach(func(k, v []byte) error {
		var r HookRun
		if err := json.Unmarshal(v, &r); err != nil {
			return nil // a corrupt entry stays: HookRuns reports it
		}
		changed := false
		if id := unpackID(r.Deployment); id.RollbackAttempt > 0 {
			r.ActivationID, changed = id, true
		}
		if rest, ok := strings.CutPrefix(r.Key, "validate:"); ok {
			if id := unpackID(rest); id.RollbackAttempt > 0 {
				r.Key, changed = ValidateKey(id), true
			}
		}
		if changed {
			moves = append(moves, move{bytes.Clone(k), hookRunKey(r.Key, r.Position), &r})
		}
		return nil
	})
	if err != nil {
		return err
	}
	return apply(b, moves)
}

// apply writes moves in b (after its ForEach: a bucket is not changed
// while it is iterated).
func apply(b *bolt.Bucket, moves []move) error {
	for _, m := range moves {
		v, err := json.Marshal(m.value)
		if err != nil {
			return err
		}
		if err := b.Delete(m.old); err != nil {
			return err
		}
		if err := b.Put(m.new, v); err != nil {
			return err
		}
	}
	return nil
}

// unpackID reads a key of schema 4 as an ActivationID.
func unpackID(key string) ActivationID {
	id, n := journalkey.Unpack(key)
	return ActivationID{Deployment: id, RollbackAttempt: n}
}
