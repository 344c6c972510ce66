package store

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"path/filepath"
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
	data := []byte("hello chunk")
	id := sha256.Sum256(data)
	when := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	err := s.Update(func(tx *Tx) error {
		if err := tx.PutChunk(id, data); err != nil {
			return err
		}
		if err := tx.PutRelease(&Release{Application: "hello", ID: "r1", Manifest: []byte("m"), State: ReleaseStaged, Size: 11, UpdateTime: when}); err != nil {
			return err
		}
		return tx.PutActivation(&Activation{Deployment: "d-1", State: ActivationActive, Apps: []AppActivation{{Application: "hello", Previous: "r0", Target: "r1", Swapped: true}}, SwapTime: when, UpdateTime: when})
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
		got, err := tx.Chunk(id)
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("Chunk = %q, %v", got, err)
		}
		if !tx.HasChunk(id) {
			t.Error("HasChunk = false")
		}
		if tx.HasChunk([32]byte{1}) {
			t.Error("HasChunk(unknown) = true")
		}
		ids, _ := tx.ChunkIDs()
		if len(ids) != 1 || ids[0] != id {
			t.Errorf("ChunkIDs = %x", ids)
		}
		r, err := tx.Release("hello", "r1")
		if err != nil || r.State != ReleaseStaged || string(r.Manifest) != "m" || !r.UpdateTime.Equal(when) {
			t.Errorf("Release = %+v, %v", r, err)
		}
		a, err := tx.Activation("d-1")
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
			"chunk":      func() error { _, err := tx.Chunk([32]byte{}); return err }(),
			"release":    func() error { _, err := tx.Release("a", "b"); return err }(),
			"activation": func() error { _, err := tx.Activation("d-9"); return err }(),
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
			if err := tx.PutChunk(sha256.Sum256([]byte(k)), []byte(k)); err != nil {
				return err
			}
		}
		if err := tx.DeleteRelease("app", "b"); err != nil {
			return err
		}
		return tx.DeleteChunk(sha256.Sum256([]byte("b")))
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = s.View(func(tx *Tx) error {
		rs, err := tx.Releases()
		if err != nil || len(rs) != 1 || rs[0].ID != "a" {
			t.Errorf("Releases = %+v, %v", rs, err)
		}
		ids, _ := tx.ChunkIDs()
		if len(ids) != 1 {
			t.Errorf("ChunkIDs = %d ids, want 1", len(ids))
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
	if err := s.Update(func(tx *Tx) error { return tx.PutChunk([32]byte{}, []byte("x")) }); err != nil {
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

func TestMigrateSchema1ChunksKeyedByID(t *testing.T) {
	dir := t.TempDir()
	db, err := bolt.Open(filepath.Join(dir, FileName), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[[32]byte]string{}
	err = db.Update(func(tx *bolt.Tx) error {
		meta, _ := tx.CreateBucket(bucketMeta)
		if err := meta.Put(keySchema, []byte{0, 0, 0, 0, 0, 0, 0, 1}); err != nil {
			return err
		}
		for _, b := range [][]byte{bucketChunks, bucketReleases, bucketJournal} {
			if _, err := tx.CreateBucket(b); err != nil {
				return err
			}
		}
		for _, v := range []string{"a", "b", "c"} {
			id := sha256.Sum256([]byte(v))
			want[id] = v
			if err := tx.Bucket(bucketChunks).Put(id[:], []byte(v)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = db.Close()
	s := openT(t, dir)
	defer s.Close()
	if v, _ := s.SchemaVersion(); v != SchemaVersion {
		t.Fatalf("schema version = %d, want %d", v, SchemaVersion)
	}
	_ = s.View(func(tx *Tx) error {
		for id, v := range want {
			if got, err := tx.Chunk(id); err != nil || string(got) != v {
				t.Errorf("chunk %q after migration: %q, %v", v, got, err)
			}
		}
		if ids, _ := tx.ChunkIDs(); len(ids) != len(want) {
			t.Errorf("%d chunk ids after migration, want %d", len(ids), len(want))
		}
		if tx.tx.Bucket(bucketChunks) != nil {
			t.Error("the schema 1 chunks bucket is still there")
		}
		return nil
	})
}

func TestWriteChunkWritesTheStoredData(t *testing.T) {
	s := openT(t, t.TempDir())
	defer s.Close()
	data := bytes.Repeat([]byte("0123456789abcdef"), 16<<10) // 256 KiB: whole pages to drop
	id := sha256.Sum256(data)
	if err := s.Update(func(tx *Tx) error { return tx.PutChunk(id, data) }); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second read maps the dropped pages again
		var out bytes.Buffer
		err := s.View(func(tx *Tx) error {
			_, err := tx.WriteChunk(id, &out)
			return err
		})
		if err != nil || !bytes.Equal(out.Bytes(), data) {
			t.Fatalf("WriteChunk: %d bytes, %v", out.Len(), err)
		}
	}
	err := s.View(func(tx *Tx) error {
		_, err := tx.WriteChunk([32]byte{7}, io.Discard)
		return err
	})
	if !errors.Is(err, errkind.NotFound) {
		t.Errorf("WriteChunk(unknown) = %v, want NotFound", err)
	}
}

func TestOpenCompactsAFileMostlyFree(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	keep := []byte("kept")
	keepID := sha256.Sum256(keep)
	var ids [][32]byte
	err := s.Update(func(tx *Tx) error {
		if err := tx.PutChunk(keepID, keep); err != nil {
			return err
		}
		for i := range (CompactMinFree + 1<<20) / (256 << 10) {
			data := bytes.Repeat([]byte{byte(i), byte(i >> 8)}, 128<<10)
			id := sha256.Sum256(data)
			ids = append(ids, id)
			if err := tx.PutChunk(id, data); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Update(func(tx *Tx) error {
		for _, id := range ids {
			if err := tx.DeleteChunk(id); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	before, _ := os.Stat(filepath.Join(dir, FileName))
	_ = s.Close()

	s = openT(t, dir)
	defer s.Close()
	after, _ := os.Stat(filepath.Join(dir, FileName))
	if s.Compacted <= 0 || after.Size() >= before.Size()/2 {
		t.Fatalf("file %d bytes before, %d after (Compacted %d): not compacted", before.Size(), after.Size(), s.Compacted)
	}
	_ = s.View(func(tx *Tx) error {
		if got, err := tx.Chunk(keepID); err != nil || string(got) != "kept" {
			t.Errorf("kept chunk after compaction: %q, %v", got, err)
		}
		return nil
	})
	if err := s.Update(func(tx *Tx) error { return tx.PutChunk([32]byte{5}, []byte("x")) }); err != nil {
		t.Errorf("write after compaction: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, FileName+".compact")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the compaction's copy is left behind: %v", err)
	}
}
