package store

import (
	"bytes"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/controlplane/storecodec"
	"github.com/cutover-dev/cutover/pkg/errkind"
	"github.com/cutover-dev/cutover/pkg/journalkey"
)

// Migration 0006 turns schema 5's JSON values into the protobuf records of
// proto/cutover/storage/v1 (controlplane/storecodec), and a deployment
// held as one value into a header plus one record per agent. The buckets
// that may be large (deployments, audit) are copied into new buckets
// (deployment_records and deployment_agents, audit_records) in batches by
// its prepare step, each batch a transaction that resumes after the last
// record copied, so that a crash costs one batch; the old buckets stay
// until the apply step deletes them, and schema 5's code ignores the new
// ones. The apply step copies what is left (nothing, unless a batch was
// cut short), converts the small buckets in place, carries the deployment
// id sequence over and deletes the old buckets. Chunks, manifests, the
// release index and SQL plans are left as they are.
//
// It decodes schema 5's JSON through the JSON tags of controlplane/model
// and writes through today's accessors: a later migration that changes
// these encodings must first freeze what this one writes.

// protoBatch bounds one transaction of the prepare step: records copied,
// counting each agent of a deployment as one.
var protoBatch = 5000

// copyProtoRecords is migration 0006's prepare step.
func copyProtoRecords(db *bolt.DB) error {
	for {
		done := false
		err := db.Update(func(btx *bolt.Tx) error {
			var err error
			done, err = copyProtoBatch(btx, protoBatch)
			return err
		})
		if err != nil || done {
			return err
		}
	}
}

// copyProtoBatch copies deployments, then audit entries, from their JSON
// buckets into the new ones, starting after the last record copied,
// until about limit records were copied (limit < 0: no limit). done says
// that nothing is left to copy.
func copyProtoBatch(btx *bolt.Tx, limit int) (done bool, err error) {
	tx := &Tx{tx: btx}
	for _, name := range [][]byte{bucketDeploymentRecords, bucketDeploymentAgents, bucketAuditRecords} {
		if _, err := btx.CreateBucketIfNotExists(name); err != nil {
			return false, err
		}
	}
	n := 0
	if old := btx.Bucket(bucketDeployments); old != nil {
		to := btx.Bucket(bucketDeploymentRecords)
		if err := to.SetSequence(max(to.Sequence(), old.Sequence())); err != nil {
			return false, err
		}
		c := old.Cursor()
		for k, v := seekAfter(c, to); k != nil; k, v = c.Next() {
			if limit >= 0 && n >= limit {
				return false, nil
			}
			d, err := fromJSON[model.Deployment]("deployment", k, v)
			if err != nil {
				return false, err
			}
			if d.RollbackAttempt, err = schema5RollbackAttempt(k, v); err != nil {
				return false, err
			}
			// The copy resumes after the last key copied: a record must
			// land under the key it was read from.
			if key, ok := deploymentKey(d.ID); !ok || !bytes.Equal(key, k) {
				return false, fmt.Errorf("deployment record %x of schema 5 holds id %q: %w", k, d.ID, errkind.DataLoss)
			}
			if err := tx.PutDeployment(d); err != nil {
				return false, fmt.Errorf("deployment %s: %w", d.ID, err)
			}
			n += 1 + len(d.Agents)
		}
	}
	if old := btx.Bucket(bucketAudit); old != nil {
		c := old.Cursor()
		for k, v := seekAfter(c, btx.Bucket(bucketAuditRecords)); k != nil; k, v = c.Next() {
			if limit >= 0 && n >= limit {
				return false, nil
			}
			r, err := fromJSON[model.AuditRecord]("audit entry", k, v)
			if err != nil {
				return false, err
			}
			if err := tx.PutAudit(r); err != nil {
				return false, err
			}
			n++
		}
	}
	return true, nil
}

// schema5RollbackAttempt reads the attempt of the rollback by command of a
// deployment record of schema 5, which stored it packed in rollback_key
// ("<id>~rollback.<n>"; model.Deployment now has RollbackAttempt).
func schema5RollbackAttempt(k, raw []byte) (int, error) {
	v, err := fromJSON[struct {
		ID          string `json:"id"`
		RollbackKey string `json:"rollback_key"`
	}]("deployment", k, raw)
	if err != nil {
		return 0, err
	}
	if id, n := journalkey.Unpack(v.RollbackKey); id == v.ID {
		return n, nil
	}
	return 0, nil
}

// seekAfter positions c on the first key after the last key of to (the
// first key when to is empty).
func seekAfter(c *bolt.Cursor, to *bolt.Bucket) (k, v []byte) {
	last, _ := to.Cursor().Last()
	if last == nil {
		return c.First()
	}
	k, v = c.Seek(last)
	if k != nil && bytes.Equal(k, last) {
		return c.Next()
	}
	return k, v
}

// protoRecords is migration 0006's apply step.
func protoRecords(btx *bolt.Tx) error {
	if _, err := copyProtoBatch(btx, -1); err != nil {
		return err
	}
	for _, name := range [][]byte{bucketDeployments, bucketAudit} {
		if btx.Bucket(name) == nil {
			continue
		}
		if err := btx.DeleteBucket(name); err != nil {
			return err
		}
	}
	tx := &Tx{tx: btx}
	return convertInPlace(
		jsonToProto(btx, bucketEnvironments, "environment", tx.PutEnvironment),
		jsonToProto(btx, bucketApplications, "application", tx.PutApplication),
		jsonToProto(btx, bucketReleases, "release", func(r *model.Release) error {
			return put(btx.Bucket(bucketReleases), []byte(r.ID), r, storecodec.EncodeRelease)
		}),
		jsonToProto(btx, bucketAgents, "agent", tx.PutAgent),
		jsonToProto(btx, bucketTokens, "operator token", tx.PutOperatorToken),
		jsonToProto(btx, bucketJoinTokens, "join token", tx.PutJoinToken),
		jsonToProto(btx, bucketEnrollments, "enrollment", tx.PutEnrollment),
	)
}

// convertInPlace runs each conversion in turn, stopping at the first error.
func convertInPlace(steps ...func() error) error {
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

// jsonToProto returns the conversion of every JSON record of bucket name
// into what putFn writes in its place (under the same key).
func jsonToProto[V any](btx *bolt.Tx, name []byte, what string, putFn func(*V) error) func() error {
	return func() error {
		var vs []*V
		err := btx.Bucket(name).ForEach(func(k, raw []byte) error {
			if raw == nil {
				return nil // nested bucket
			}
			v, err := fromJSON[V](what, k, raw)
			vs = append(vs, v)
			return err
		})
		if err != nil {
			return err
		}
		for _, v := range vs {
			if err := putFn(v); err != nil {
				return err
			}
		}
		return nil
	}
}

// fromJSON decodes a record of schema 5.
func fromJSON[V any](what string, k, raw []byte) (*V, error) {
	v := new(V)
	if err := json.Unmarshal(raw, v); err != nil {
		return nil, fmt.Errorf("decode %s %q of schema 5: %w: %v", what, k, errkind.DataLoss, err)
	}
	return v, nil
}
