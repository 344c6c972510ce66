package store

import (
	"encoding/binary"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TestHookRunsSurviveReopen: hook runs are read back by key, in position
// order, after a reopen; a key that is a prefix of another sees only its own.
func TestHookRunsSurviveReopen(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	when := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	runs := []*HookRun{
		{Key: "d-1.before_activate.fe-1", Position: 1, Application: "hello", Kind: "before_activate", Index: 1, State: HookStarted, StartTime: when, UpdateTime: when},
		{Key: "d-1.before_activate.fe-1", Position: 0, Application: "hello", Kind: "before_activate", Index: 0, State: HookDone, ExitCode: 3, Duration: time.Second, Output: "out", Error: "exited with status 3", UpdateTime: when},
		{Key: "d-1.before_activate.fe-10", Position: 0, Application: "other", Kind: "before_activate", State: HookDone, UpdateTime: when},
	}
	err := s.Update(func(tx *Tx) error {
		for _, r := range runs {
			if err := tx.PutHookRun(r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openT(t, dir)
	defer s.Close()
	_ = s.View(func(tx *Tx) error {
		got, err := tx.HookRuns("d-1.before_activate.fe-1")
		if err != nil || len(got) != 2 {
			t.Fatalf("HookRuns = %d runs, %v; want 2", len(got), err)
		}
		if got[0].Position != 0 || got[0].State != HookDone || got[0].ExitCode != 3 || got[0].Output != "out" || got[0].Duration != time.Second {
			t.Errorf("first run = %+v", got[0])
		}
		if got[1].Position != 1 || got[1].State != HookStarted || !got[1].StartTime.Equal(when) {
			t.Errorf("second run = %+v", got[1])
		}
		if none, err := tx.HookRuns("d-2.before_activate.fe-1"); err != nil || len(none) != 0 {
			t.Errorf("HookRuns of an unknown key = %v, %v; want none", none, err)
		}
		return nil
	})
	if err := s.Update(func(tx *Tx) error { return tx.PutHookRun(&HookRun{Position: 0}) }); err == nil {
		t.Error("PutHookRun without a key: no error")
	}
}

// TestDeleteHookRunsBefore removes only the runs last changed before the cut.
func TestDeleteHookRunsBefore(t *testing.T) {
	s := openT(t, t.TempDir())
	defer s.Close()
	cut := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	err := s.Update(func(tx *Tx) error {
		for i, when := range []time.Time{cut.Add(-time.Hour), cut, cut.Add(time.Hour)} {
			if err := tx.PutHookRun(&HookRun{Key: "c", Position: i, State: HookDone, UpdateTime: when}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := s.Update(func(tx *Tx) (err error) { n, err = tx.DeleteHookRunsBefore(cut); return err }); err != nil || n != 1 {
		t.Fatalf("DeleteHookRunsBefore = %d, %v; want 1", n, err)
	}
	_ = s.View(func(tx *Tx) error {
		if got, _ := tx.HookRuns("c"); len(got) != 2 || got[0].Position != 1 {
			t.Errorf("left: %d runs, want positions 1 and 2", len(got))
		}
		return nil
	})
}

// TestMigrationAddsHookRuns: a schema 3 file (no hook_runs bucket) gets
// one, and keeps its activation journal.
func TestMigrationAddsHookRuns(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	if err := s.Update(func(tx *Tx) error {
		return tx.PutActivation(&Activation{ActivationID: ActivationID{Deployment: "d-1"}, State: ActivationActive})
	}); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	// Make it a schema 3 file, as an older agent left it.
	db, err := bolt.Open(filepath.Join(dir, FileName), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bucketHookRuns); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Put(keySchema, binary.BigEndian.AppendUint64(nil, 3))
	})
	_ = db.Close()
	if err != nil {
		t.Fatal(err)
	}

	s = openT(t, dir)
	defer s.Close()
	if v, _ := s.SchemaVersion(); v != SchemaVersion {
		t.Fatalf("schema version = %d, want %d", v, SchemaVersion)
	}
	if err := s.Update(func(tx *Tx) error {
		if _, err := tx.Activation(ActivationID{Deployment: "d-1"}); err != nil {
			t.Errorf("activation journal after migration: %v", err)
		}
		return tx.PutHookRun(&HookRun{Key: "c", State: HookStarted})
	}); err != nil {
		t.Fatalf("hook run after migration: %v", err)
	}
}
