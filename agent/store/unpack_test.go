package store

import (
	"encoding/binary"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// schema4File writes a store file of schema 4, as an agent of the
// previous release left it, whose journal and hook journal hold the raw
// entries given (bucket → key → value).
func schema4File(t *testing.T, dir string, entries map[string]map[string]string) {
	t.Helper()
	s := openT(t, dir)
	_ = s.Close()
	db, err := bolt.Open(filepath.Join(dir, FileName), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		for bucket, kvs := range entries {
			for k, v := range kvs {
				if err := tx.Bucket([]byte(bucket)).Put([]byte(k), []byte(v)); err != nil {
					return err
				}
			}
		}
		return tx.Bucket(bucketMeta).Put(keySchema, binary.BigEndian.AppendUint64(nil, 4))
	})
	if err != nil {
		t.Fatal(err)
	}
}

// oldHookRunKey is a hook_runs key as schema 4 wrote it.
func oldHookRunKey(key string, pos uint32) string {
	return string(binary.BigEndian.AppendUint32(append([]byte(key), 0), pos))
}

// TestMigrationUnpacksRollbackKeys: an agent upgraded in place reads the
// journal entries an agent of schema 4 wrote under the packed keys
// "<id>~rollback.<n>", and the hooks their commands ran, under the keys a
// resent command asks for; the deployment's own entries stay as they were.
func TestMigrationUnpacksRollbackKeys(t *testing.T) {
	const at = `"update_time":"2026-01-02T03:04:05Z"`
	dir := t.TempDir()
	schema4File(t, dir, map[string]map[string]string{
		"journal": {
			"d-2":            `{"deployment":"d-2","state":"active","apps":[{"application":"hello","previous":"r1","target":"r2"}],` + at + `}`,
			"d-2~rollback.5": `{"deployment":"d-2~rollback.5","state":"armed","apps":[{"application":"hello","previous":"r2","target":"r1","swapped":true}],` + at + `}`,
			"d-3~rollback.1": `{"deployment":"d-3~rollback.1","state":"failed","apps":[],"error":"health check failed",` + at + `}`,
		},
		"hook_runs": {
			oldHookRunKey("validate:d-2~rollback.5", 1):            `{"key":"validate:d-2~rollback.5","position":1,"deployment":"d-2~rollback.5","application":"hello","kind":"validate","index":0,"state":"done",` + at + `}`,
			oldHookRunKey("d-2~rollback.5.before_activate.fe1", 0): `{"key":"d-2~rollback.5.before_activate.fe1","position":0,"deployment":"d-2~rollback.5","application":"hello","kind":"before_activate","index":0,"state":"started",` + at + `}`,
			oldHookRunKey("validate:d-2", 0):                       `{"key":"validate:d-2","position":0,"deployment":"d-2","application":"hello","kind":"validate","index":0,"state":"done",` + at + `}`,
		},
	})
	s := openT(t, dir)
	defer s.Close()
	if v, _ := s.SchemaVersion(); v != SchemaVersion {
		t.Fatalf("schema version = %d, want %d", v, SchemaVersion)
	}

	journal := []struct {
		id    ActivationID
		state ActivationState
		apps  int
	}{
		{ActivationID{Deployment: "d-2"}, ActivationActive, 1},
		{ActivationID{Deployment: "d-2", RollbackAttempt: 5}, ActivationArmed, 1},
		{ActivationID{Deployment: "d-3", RollbackAttempt: 1}, ActivationFailed, 0},
	}
	hookRuns := []struct {
		key  string
		id   ActivationID
		kind string
		pos  int
	}{
		{ValidateKey(ActivationID{Deployment: "d-2", RollbackAttempt: 5}), ActivationID{Deployment: "d-2", RollbackAttempt: 5}, "validate", 1},
		{"d-2~rollback.5.before_activate.fe1", ActivationID{Deployment: "d-2", RollbackAttempt: 5}, "before_activate", 0}, // a command id: kept
		{ValidateKey(ActivationID{Deployment: "d-2"}), ActivationID{Deployment: "d-2"}, "validate", 0},
	}
	err := s.View(func(tx *Tx) error {
		for _, tt := range journal {
			e, err := tx.Activation(tt.id)
			if err != nil || e.ActivationID != tt.id || e.State != tt.state || len(e.Apps) != tt.apps || e.UpdateTime.IsZero() {
				t.Errorf("journal entry of %s after migration: %+v, %v", tt.id, e, err)
			}
		}
		all, err := tx.Activations()
		if err != nil || len(all) != len(journal) {
			t.Errorf("journal after migration holds %d entries (%v), want %d", len(all), err, len(journal))
		}
		for _, packed := range []string{"d-2~rollback.5", "d-3~rollback.1"} {
			if tx.tx.Bucket(bucketJournal).Get([]byte(packed)) != nil {
				t.Errorf("the packed key %q is still in the journal", packed)
			}
		}
		for _, tt := range hookRuns {
			rs, err := tx.HookRuns(tt.key)
			if err != nil || len(rs) != 1 || rs[0].ActivationID != tt.id || rs[0].Kind != tt.kind || rs[0].Position != tt.pos || rs[0].Key != tt.key {
				t.Errorf("hook runs of %q after migration: %+v, %v", tt.key, rs, err)
			}
		}
		if rs, _ := tx.HookRuns("validate:d-2~rollback.5"); len(rs) != 0 {
			t.Errorf("hook runs are still under the packed validate key: %+v", rs)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestJournalKeys(t *testing.T) {
	tests := []struct {
		id   ActivationID
		key  string
		vkey string
		str  string
	}{
		{ActivationID{Deployment: "d-7"}, "d-7", "validate:d-7", "d-7"},
		{ActivationID{Deployment: "d-7", RollbackAttempt: 12}, "d-7\x00\x00\x00\x00\x0c", "validate:d-7/rollback.12", "d-7 (rollback by command 12)"},
	}
	for _, tt := range tests {
		if got := string(journalKey(tt.id)); got != tt.key {
			t.Errorf("journalKey(%+v) = %q, want %q", tt.id, got, tt.key)
		}
		if got := ValidateKey(tt.id); got != tt.vkey {
			t.Errorf("ValidateKey(%+v) = %q, want %q", tt.id, got, tt.vkey)
		}
		if got := tt.id.String(); got != tt.str {
			t.Errorf("String(%+v) = %q, want %q", tt.id, got, tt.str)
		}
	}
}
