package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/cutover-dev/cutover/pkg/errkind"
)

func openT(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func TestReopenKeepsEverything(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	bits := []byte{0b101, 0xff}
	when := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	err := s.Update(func(tx *Tx) error {
		if err := tx.PutProgress("hello", "r2", bits); err != nil {
			return err
		}
		if err := tx.PutRelease(&Release{Application: "hello", ID: "r1", Manifest: []byte("m"), State: ReleaseStaged, Size: 11, UpdateTime: when}); err != nil {
			return err
		}
		return tx.PutActivation(&Activation{ActivationID: ActivationID{Deployment: "d-1"}, State: ActivationActive, Apps: []AppActivation{{Application: "hello", Previous: "r0", Target: "r1", Swapped: true}}, SwapTime: when, UpdateTime: when})
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openT(t, dir)
	defer s.Close()
	if v, err := s.SchemaVersion(); err != nil || v != SchemaVersion {
		t.Fatalf("schema version = %d, %v; want %d", v, err, SchemaVersion)
	}
	err = s.View(func(tx *Tx) error {
		if got, ok := tx.Progress("hello", "r2"); !ok || !bytes.Equal(got, bits) {
			t.Errorf("Progress = %08b, %v; want %08b", got, ok, bits)
		}
		if _, ok := tx.Progress("hello", "r1"); ok {
			t.Error("Progress of a release without one: found")
		}
		r, err := tx.Release("hello", "r1")
		if err != nil || r.State != ReleaseStaged || string(r.Manifest) != "m" || !r.UpdateTime.Equal(when) {
			t.Errorf("Release = %+v, %v", r, err)
		}
		a, err := tx.Activation(ActivationID{Deployment: "d-1"})
		if err != nil || a.State != ActivationActive || len(a.Apps) != 1 || a.Apps[0].Previous != "r0" || !a.SwapTime.Equal(when) {
			t.Errorf("Activation = %+v, %v", a, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestNotFound(t *testing.T) {
	s := openT(t, t.TempDir())
	defer s.Close()
	_ = s.View(func(tx *Tx) error {
		for name, err := range map[string]error{
			"release":    func() error { _, err := tx.Release("a", "b"); return err }(),
			"activation": func() error { _, err := tx.Activation(ActivationID{Deployment: "d-9"}); return err }(),
		} {
			if !errors.Is(err, errkind.NotFound) {
				t.Errorf("%s: err = %v, want NotFound", name, err)
			}
		}
		return nil
	})
}

func TestDeleteAndList(t *testing.T) {
	s := openT(t, t.TempDir())
	defer s.Close()
	err := s.Update(func(tx *Tx) error {
		for _, k := range []string{"b", "a"} {
			if err := tx.PutRelease(&Release{Application: "app", ID: k, State: ReleaseStaging}); err != nil {
				return err
			}
			if err := tx.PutProgress("app", k, []byte{1}); err != nil {
				return err
			}
		}
		if err := tx.DeleteRelease("app", "b"); err != nil {
			return err
		}
		return tx.DeleteProgress("app", "b")
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = s.View(func(tx *Tx) error {
		rs, err := tx.Releases()
		if err != nil || len(rs) != 1 || rs[0].ID != "a" {
			t.Errorf("Releases = %+v, %v", rs, err)
		}
		if _, ok := tx.Progress("app", "b"); ok {
			t.Error("deleted progress is still there")
		}
		if _, ok := tx.Progress("app", "a"); !ok {
			t.Error("progress of a is gone")
		}
		return nil
	})
}

func TestSecondOpenIsRefusedReadably(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	defer s.Close()
	_, err := Open(dir)
	if err == nil || !strings.Contains(err.Error(), "in use by another process") || !errors.Is(err, errkind.FailedPrecondition) {
		t.Fatalf("second Open err = %v", err)
	}
}

func TestMigrateFromEmptyFile(t *testing.T) {
	dir := t.TempDir()
	db, err := bolt.Open(filepath.Join(dir, FileName), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = db.Close()
	s := openT(t, dir)
	defer s.Close()
	if v, _ := s.SchemaVersion(); v != SchemaVersion {
		t.Fatalf("schema version = %d", v)
	}
	if err := s.Update(func(tx *Tx) error { return tx.PutProgress("a", "b", []byte{1}) }); err != nil {
		t.Fatalf("put after migration: %v", err)
	}
}

func TestNewerSchemaIsRefused(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	_ = s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keySchema, []byte{0, 0, 0, 0, 0, 0, 0, 99})
	})
	_ = s.Close()
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("Open err = %v, want newer-schema error", err)
	}
}

// oldFile writes a store file of schema version (1 or 2) holding a staged
// release and n chunks of size bytes each in that schema's chunk buckets.
func oldFile(t *testing.T, dir string, version byte, n, size int) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(dir, FileName), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		meta, _ := tx.CreateBucket(bucketMeta)
		if err := meta.Put(keySchema, []byte{0, 0, 0, 0, 0, 0, 0, version}); err != nil {
			return err
		}
		chunkBuckets := [][]byte{bucketChunks}
		if version == 2 {
			chunkBuckets = [][]byte{bucketChunkIDs, bucketChunkDat}
		}
		for _, b := range append(chunkBuckets, bucketReleases, bucketJournal) {
			if _, err := tx.CreateBucket(b); err != nil {
				return err
			}
		}
		rec, _ := json.Marshal(map[string]any{"application": "hello", "id": "r1", "state": "staged", "size": 3, "manifest": []byte("manifest bytes")})
		if err := tx.Bucket(bucketReleases).Put(releaseKey("hello", "r1"), rec); err != nil {
			return err
		}
		for i := range n {
			data := bytes.Repeat([]byte{byte(i), byte(i >> 8)}, size/2)
			id := sha256.Sum256(data)
			if err := tx.Bucket(chunkBuckets[len(chunkBuckets)-1]).Put(id[:], data); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestMigrationDropsChunkDataKeepsReleases(t *testing.T) {
	for _, version := range []byte{1, 2} {
		t.Run(fmt.Sprintf("from schema %d", version), func(t *testing.T) {
			dir := t.TempDir()
			oldFile(t, dir, version, 3, 64)
			s := openT(t, dir)
			defer s.Close()
			if v, _ := s.SchemaVersion(); v != SchemaVersion {
				t.Fatalf("schema version = %d, want %d", v, SchemaVersion)
			}
			_ = s.View(func(tx *Tx) error {
				for _, b := range [][]byte{bucketChunks, bucketChunkIDs, bucketChunkDat} {
					if tx.tx.Bucket(b) != nil {
						t.Errorf("bucket %s is still there", b)
					}
				}
				if r, err := tx.Release("hello", "r1"); err != nil || r.State != ReleaseStaged || r.Size != 3 || string(r.Manifest) != "manifest bytes" {
					t.Errorf("staged release after migration: %+v, %v", r, err)
				}
				return nil
			})
			if err := s.Update(func(tx *Tx) error { return tx.PutProgress("hello", "r2", []byte{1}) }); err != nil {
				t.Errorf("progress after migration: %v", err)
			}
		})
	}
}

func TestOpenCompactsAFileMostlyFree(t *testing.T) {
	dir := t.TempDir()
	oldFile(t, dir, 2, (CompactMinFree+1<<20)/(256<<10), 256<<10) // chunk data the migration drops
	before, _ := os.Stat(filepath.Join(dir, FileName))

	s := openT(t, dir)
	defer s.Close()
	after, _ := os.Stat(filepath.Join(dir, FileName))
	if s.Compacted <= 0 || after.Size() >= before.Size()/2 {
		t.Fatalf("file %d bytes before, %d after (Compacted %d): not compacted", before.Size(), after.Size(), s.Compacted)
	}
	_ = s.View(func(tx *Tx) error {
		if r, err := tx.Release("hello", "r1"); err != nil || r.Size != 3 {
			t.Errorf("release after compaction: %+v, %v", r, err)
		}
		return nil
	})
	if err := s.Update(func(tx *Tx) error { return tx.PutProgress("hello", "r2", []byte{1}) }); err != nil {
		t.Errorf("write after compaction: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, FileName+".compact")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the compaction's copy is left behind: %v", err)
	}
}

// TestReleaseRecordsLeaveManifestsAlone: the record readers without the
// manifest, and a state change that keeps the manifest as it was.
func TestReleaseRecordsLeaveManifestsAlone(t *testing.T) {
	s := openT(t, t.TempDir())
	defer s.Close()
	when := time.Date(2026, 12, 8, 1, 0, 0, 0, time.UTC)
	err := s.Update(func(tx *Tx) error {
		if err := tx.PutRelease(&Release{Application: "a", ID: "r1", Manifest: []byte("manifest"), State: ReleaseStaging, Size: 8}); err != nil {
			return err
		}
		return tx.SetReleaseState("a", "r1", ReleaseStaged, when)
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = s.View(func(tx *Tx) error {
		want := Release{Application: "a", ID: "r1", State: ReleaseStaged, Size: 8, UpdateTime: when}
		recs, err := tx.ReleaseRecords()
		if err != nil || len(recs) != 1 || !reflect.DeepEqual(*recs[0], want) {
			t.Errorf("ReleaseRecords = %+v, %v; want [%+v]", recs, err, want)
		}
		if r, err := tx.ReleaseRecord("a", "r1"); err != nil || !reflect.DeepEqual(*r, want) {
			t.Errorf("ReleaseRecord = %+v, %v; want %+v", r, err, want)
		}
		if got := string(tx.ManifestBytes("a", "r1")); got != "manifest" {
			t.Errorf("ManifestBytes = %q, want the manifest put", got)
		}
		if _, err := tx.ReleaseRecord("a", "r2"); !errors.Is(err, errkind.NotFound) {
			t.Errorf("ReleaseRecord of an unknown release: %v, want NotFound", err)
		}
		if err := tx.SetReleaseState("a", "r2", ReleaseStaged, when); !errors.Is(err, errkind.NotFound) {
			t.Errorf("SetReleaseState of an unknown release: %v, want NotFound", err)
		}
		return nil
	})
}
