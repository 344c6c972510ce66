// Package store is the only code that opens the agent's bbolt file,
// DATA_DIR/agent.db. It holds the releases the agent stages or has staged
// (with their manifests), how far the staging of each is (which chunk
// positions of its files are written and durable), and the activation
// journal, and the hook journal (which hooks each command ran, and how).
//
// Chunk data is not in this file: the agent writes each chunk straight into
// the release's files (agent/stage), so that every byte is written durably
// once. A release's files are the chunks' only copy.
//
// Bucket tree (values are JSON unless said otherwise):
//
//	meta
//	  schema_version         → uint64, big-endian
//	  leader_epoch           → uint64, big-endian: the highest controller
//	                           epoch seen (epoch.go)
//	releases
//	  <app> "/" <release id> → Release (without its manifest)
//	manifests
//	  <app> "/" <release id> → the release's canonical manifest bytes
//	progress
//	  <app> "/" <release id> → bitmap: bit i set = chunk position i of the
//	                           release is written and fsynced (Progress)
//	journal
//	  <deployment id>        → Activation: the deployment's own
//	  <deployment id> 0x00 <n>
//	                         → Activation: its n-th rollback by command (n
//	                           uint32 big-endian; journalKey)
//	hook_runs
//	  <key> 0x00 <position>  → HookRun: one hook of a hooks command (key: the
//	                           command id) or of a commit's validate hooks
//	                           (key: ValidateKey); position is the hook's
//	                           place in the command's list, uint32 big-endian
//
// Every Update commits with an fsync before it returns, so whatever a caller
// reports after Update returned is durable.
//
// The file is opened with the map freelist and NoFreelistSync: a commit
// writes and fsyncs the data pages and the meta page, but not the list of
// free pages, which bbolt rebuilds by scanning the file when it opens a file
// that was not closed cleanly. Durability is unchanged (a commit is on disk
// when Update returns, and a crash loses no committed data); what it saves
// is writing the freelist, which grows with the file, on every commit.
package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/cutover-dev/cutover/pkg/errkind"
)

// FileName is the store's file name inside the data dir.
const FileName = "agent.db"

// SchemaVersion is the version this code writes. Older files are migrated on open.
const SchemaVersion = 5

var (
	bucketMeta     = []byte("meta")
	bucketChunks   = []byte("chunks")     // schema 1 only
	bucketChunkIDs = []byte("chunk_ids")  // schema 2 only
	bucketChunkDat = []byte("chunk_data") // schema 2 only
	bucketReleases = []byte("releases")
	bucketProgress = []byte("progress")
	bucketManifest = []byte("manifests")
	bucketJournal  = []byte("journal")
	bucketHookRuns = []byte("hook_runs")
	keySchema      = []byte("schema_version")
)

// migrations[i] brings a file from schema version i to i+1.
var migrations = []func(tx *bolt.Tx) error{
	// 0 → 1: create the buckets.
	func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketChunks, bucketReleases, bucketJournal} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	},
	// 1 → 2: chunks keyed by id were split into chunk_ids and chunk_data.
	// Schema 3 drops both, so this step only drops the old bucket.
	func(tx *bolt.Tx) error { return deleteIfExists(tx, bucketChunks) },
	// 2 → 3: chunk data leaves the store (it lives in the releases' files).
	// Staged releases are kept: their directories hold every chunk. A
	// release that was staging starts over (its temporary directory had
	// another name and is removed by stage.Clean). Manifests move out of
	// the JSON records (where they were base64) into their own bucket.
	func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketChunkIDs, bucketChunkDat} {
			if err := deleteIfExists(tx, b); err != nil {
				return err
			}
		}
		if _, err := tx.CreateBucketIfNotExists(bucketProgress); err != nil {
			return err
		}
		manifests, err := tx.CreateBucketIfNotExists(bucketManifest)
		if err != nil {
			return err
		}
		releases := tx.Bucket(bucketReleases)
		type v2Release struct {
			Manifest []byte `json:"manifest"`
		}
		rewrite := map[string][]byte{}
		err = releases.ForEach(func(k, v []byte) error {
			var old v2Release
			var rec map[string]json.RawMessage
			if err := json.Unmarshal(v, &old); err != nil {
				return fmt.Errorf("release %s: %w", k, err)
			}
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("release %s: %w", k, err)
			}
			delete(rec, "manifest")
			b, err := json.Marshal(rec)
			if err != nil {
				return err
			}
			rewrite[string(k)] = b
			return manifests.Put(bytes.Clone(k), old.Manifest)
		})
		if err != nil {
			return err
		}
		for k, v := range rewrite {
			if err := releases.Put([]byte(k), v); err != nil {
				return err
			}
		}
		return nil
	},
	// 3 → 4: the hook journal. Hooks run by an older agent were not
	// journaled: a hooks command resent after the upgrade runs them (as
	// the older agent would have).
	func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketHookRuns)
		return err
	},
	// 4 → 5: a rollback by command's attempt leaves the packed keys
	// "<id>~rollback.<n>" for a field of its own (unpack.go).
	unpackRollbackKeys,
}

func deleteIfExists(tx *bolt.Tx, name []byte) error {
	if tx.Bucket(name) == nil {
		return nil
	}
	return tx.DeleteBucket(name)
}

// Store is the agent's bbolt file.
type Store struct {
	db   *bolt.DB
	path string
	// Compacted is how many bytes Open's compaction saved (0: none ran).
	Compacted int64
}

// Open opens (creating if needed) DATA_DIR/agent.db and migrates it to
// SchemaVersion. If more than half of the file, and at least CompactMinFree
// bytes, are free pages (chunks deleted since), it first compacts the file
// (see Compact). It fails with a readable error if another process holds it.
func Open(dataDir string) (*Store, error) {
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return nil, fmt.Errorf("create data dir %s: %w", dataDir, err)
	}
	path := filepath.Join(dataDir, FileName)
	db, err := openDB(path, dataDir)
	if err != nil {
		return nil, err
	}
	s := &Store{db: db, path: path}
	if err := s.migrate(); err != nil {
		_ = db.Close()
		return nil, err
	}
	if s.worthCompacting() {
		if err := s.compact(); err != nil {
			_ = s.db.Close()
			return nil, err
		}
	}
	return s, nil
}

func openDB(path, dataDir string) (*bolt.DB, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:        time.Second,
		FreelistType:   bolt.FreelistMapType,
		NoFreelistSync: true,
	})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("data dir %s is in use by another process (another cutover-agent?); stop it or choose another --data-dir: %w", dataDir, errkind.FailedPrecondition)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return db, nil
}

// CompactMinFree is the least free space that makes Open compact the file.
const CompactMinFree = 64 << 20

// worthCompacting reports whether free pages are more than half of the file
// and at least CompactMinFree bytes.
func (s *Store) worthCompacting() bool {
	info, err := os.Stat(s.path)
	if err != nil {
		return false
	}
	st := s.db.Stats() // pages freed by the migration just committed are still pending
	free := int64(st.FreePageN+st.PendingPageN) * int64(s.db.Info().PageSize)
	return free >= CompactMinFree && free*2 > info.Size()
}

// compact copies the live data into DATA_DIR/agent.db.compact, fsyncs it,
// renames it over agent.db and reopens it. A crash before the rename leaves
// the old file as it was (the leftover copy is replaced next time); after
// it, the new one.
func (s *Store) compact() error {
	tmpPath := s.path + ".compact"
	_ = os.Remove(tmpPath)
	before, _ := os.Stat(s.path)
	tmp, err := bolt.Open(tmpPath, 0o600, &bolt.Options{Timeout: time.Second, FreelistType: bolt.FreelistMapType, NoFreelistSync: true})
	if err != nil {
		return fmt.Errorf("compact %s: %w", s.path, err)
	}
	if err := bolt.Compact(tmp, s.db, 64<<20); err != nil {
		_ = tmp.Close()
		_ = os.Remove(tmpPath)
		return fmt.Errorf("compact %s (left as it was): %w", s.path, err)
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := s.db.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmpPath, s.path); err != nil {
		return fmt.Errorf("compact %s: %w", s.path, err)
	}
	if d, err := os.Open(filepath.Dir(s.path)); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	db, err := openDB(s.path, filepath.Dir(s.path))
	if err != nil {
		return err
	}
	s.db = db
	if after, err := os.Stat(s.path); err == nil && before != nil {
		s.Compacted = before.Size() - after.Size()
	}
	return nil
}

func (s *Store) migrate() error {
	return s.db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		var v uint64
		if b := meta.Get(keySchema); len(b) == 8 {
			v = binary.BigEndian.Uint64(b)
		}
		if v > SchemaVersion {
			return fmt.Errorf("%s has schema version %d, newer than this agent's %d; run a newer cutover-agent: %w", s.path, v, SchemaVersion, errkind.FailedPrecondition)
		}
		for ; v < SchemaVersion; v++ {
			if err := migrations[v](tx); err != nil {
				return fmt.Errorf("migrate %s from schema %d: %w", s.path, v, err)
			}
		}
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], v)
		return meta.Put(keySchema, b[:])
	})
}

// SchemaVersion returns the schema version stored in the file.
func (s *Store) SchemaVersion() (uint64, error) {
	var v uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketMeta).Get(keySchema); len(b) == 8 {
			v = binary.BigEndian.Uint64(b)
		}
		return nil
	})
	return v, err
}

// Close closes the file.
func (s *Store) Close() error { return s.db.Close() }

// View runs fn in a read-only transaction.
func (s *Store) View(fn func(*Tx) error) error {
	return s.db.View(func(tx *bolt.Tx) error { return fn(&Tx{tx: tx}) })
}

// Update runs fn in a read-write transaction, committed and fsynced when fn
// returns nil.
func (s *Store) Update(fn func(*Tx) error) error {
	return s.db.Update(func(tx *bolt.Tx) error { return fn(&Tx{tx: tx}) })
}

// Commits returns how many write transactions the store has committed
// (bbolt's transaction id, which each commit advances by one): tests
// count what an operation costs in commits, each two fdatasyncs.
func (t *Tx) Commits() uint64 { return uint64(t.tx.ID()) }

// Tx is a transaction with typed accessors. Byte slices it returns are copies
// and stay valid after the transaction.
type Tx struct {
	tx *bolt.Tx
}
