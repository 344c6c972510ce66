package store

import (
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// migration is one ordered step of the schema. Version i+1 is reached by
// running migrations[i]. Migrations never change once released; add new ones
// at the end.
type migration struct {
	name  string
	apply func(tx *bolt.Tx) error
	// prepare, if set, runs before apply, in transactions of its own (for
	// work too big for one). It must leave the file valid for the schema
	// before this migration, and be safe to run again after a crash.
	prepare func(db *bolt.DB) error
}

var migrations = []migration{
	{name: "0001_create_buckets", apply: createBuckets},
	{name: "0002_create_sql_plans", apply: createSQLPlans},
	{name: "0003_chunks_by_sequence", apply: chunksBySequence, prepare: copyChunksBySequence},
	{name: "0004_create_trust_buckets", apply: createTrustBuckets},
	{name: "0005_create_audit", apply: createAudit},
	{name: "0006_protobuf_records", apply: protoRecords, prepare: copyProtoRecords},
}

// SchemaVersion is the schema version this code writes.
var SchemaVersion = uint64(len(migrations))

func createBuckets(tx *bolt.Tx) error {
	for _, name := range [][]byte{
		bucketEnvironments, bucketApplications, bucketReleases, bucketManifests,
		bucketAppReleases, bucketChunks, bucketDeployments, bucketAgents,
	} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	return nil
}

func createTrustBuckets(tx *bolt.Tx) error {
	for _, name := range [][]byte{bucketTokens, bucketJoinTokens, bucketEnrollments} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	return nil
}

// migrate runs the migrations the file has not seen, each in its own
// transaction with the version bump.
func (s *Store) migrate(now time.Time) error {
	return runMigrations(s.db, migrations, now)
}

func runMigrations(db *bolt.DB, ms []migration, now time.Time) error {
	for {
		var v uint64
		if err := db.View(func(tx *bolt.Tx) error {
			v = (&Tx{tx: tx}).SchemaVersion()
			return nil
		}); err != nil {
			return err
		}
		if v < uint64(len(ms)) && ms[v].prepare != nil {
			if err := ms[v].prepare(db); err != nil {
				return fmt.Errorf("migration %s: %w", ms[v].name, err)
			}
		}
		done := false
		err := db.Update(func(tx *bolt.Tx) error {
			meta, err := tx.CreateBucketIfNotExists(bucketMeta)
			if err != nil {
				return err
			}
			applied, err := meta.CreateBucketIfNotExists(bucketMigrations)
			if err != nil {
				return err
			}
			v := (&Tx{tx: tx}).SchemaVersion()
			if v > uint64(len(ms)) {
				return fmt.Errorf("%s has schema version %d, newer than this controller knows (%d); run a newer cutover-controller", FileName, v, len(ms))
			}
			if v == uint64(len(ms)) {
				done = true
				return nil
			}
			m := ms[v]
			if err := m.apply(tx); err != nil {
				return fmt.Errorf("migration %s: %w", m.name, err)
			}
			if err := applied.Put([]byte(m.name), []byte(now.UTC().Format(time.RFC3339))); err != nil {
				return err
			}
			return meta.Put(keySchemaVersion, u64(v+1))
		})
		if err != nil || done {
			return err
		}
	}
}
