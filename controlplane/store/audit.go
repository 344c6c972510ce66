package store

import (
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/controlplane/storecodec"
	"github.com/cutover-dev/cutover/pkg/errkind"
)

// createAudit is migration 0005: the bucket of the audit log.
func createAudit(tx *bolt.Tx) error {
	_, err := tx.CreateBucketIfNotExists(bucketAudit)
	return err
}

func decodeAudit(k, raw []byte) (*model.AuditRecord, error) {
	r, err := storecodec.DecodeAuditRecord(raw)
	if err != nil {
		return nil, fmt.Errorf("audit entry %d: %w", binary.BigEndian.Uint64(k), err)
	}
	return r, nil
}

// LastAudit returns the last entry of the audit log, or nil (and no error)
// when the log is empty.
func (tx *Tx) LastAudit() (*model.AuditRecord, error) {
	k, raw := tx.tx.Bucket(bucketAuditRecords).Cursor().Last()
	if k == nil {
		return nil, nil
	}
	return decodeAudit(k, raw)
}

// Audit returns entry seq of the audit log; NotFound if there is none.
func (tx *Tx) Audit(seq uint64) (*model.AuditRecord, error) {
	raw := tx.tx.Bucket(bucketAuditRecords).Get(u64(seq))
	if raw == nil {
		return nil, fmt.Errorf("audit entry %d does not exist: %w", seq, errkind.NotFound)
	}
	return decodeAudit(u64(seq), raw)
}

// AppendAudit adds r at the end of the audit log. r.Seq must be the last
// entry's Seq + 1 (1 for the first): the caller reads LastAudit, numbers
// and hashes the entry in the same transaction. Aborted otherwise: the
// log is never overwritten nor left with a gap.
func (tx *Tx) AppendAudit(r *model.AuditRecord) error {
	b := tx.tx.Bucket(bucketAuditRecords)
	var next uint64 = 1
	if k, _ := b.Cursor().Last(); k != nil {
		next = binary.BigEndian.Uint64(k) + 1
	}
	if r.Seq != next {
		return fmt.Errorf("audit entry numbered %d, but the next entry is %d; read the last entry and append in one transaction: %w", r.Seq, next, errkind.Aborted)
	}
	return put(b, u64(r.Seq), r, storecodec.EncodeAuditRecord)
}

// PutAudit writes r under r.Seq, replacing any entry there. Only for
// repairs and tests: the audit log is appended with AppendAudit, and a
// record changed here no longer verifies.
func (tx *Tx) PutAudit(r *model.AuditRecord) error {
	if r.Seq == 0 {
		return fmt.Errorf("audit entries are numbered from 1: %w", errkind.InvalidArgument)
	}
	return put(tx.tx.Bucket(bucketAuditRecords), u64(r.Seq), r, storecodec.EncodeAuditRecord)
}

// AuditRecords calls fn with every entry of the audit log, oldest first,
// and stops at the first error fn returns, returning it.
func (tx *Tx) AuditRecords(fn func(*model.AuditRecord) error) error {
	c := tx.tx.Bucket(bucketAuditRecords).Cursor()
	for k, raw := c.First(); k != nil; k, raw = c.Next() {
		r, err := decodeAudit(k, raw)
		if err != nil {
			return err
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}
