package etcdstore

import (
	"fmt"

	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/controlplane/storecodec"
	"github.com/cutover-dev/cutover/pkg/errkind"
)

// LastAudit returns the newest record, nil when the log is empty.
func (tx *Tx) LastAudit() (*model.AuditRecord, error) {
	kvs, err := tx.list(collAudit+"/", true)
	if err != nil || len(kvs) == 0 {
		return nil, err
	}
	return decodeAt(kvs[0].key, kvs[0].val, storecodec.DecodeAuditRecord)
}

// Audit returns entry seq of the audit log; NotFound if there is none.
func (tx *Tx) Audit(seq uint64) (*model.AuditRecord, error) {
	return getRecord(tx, numbered(collAudit, seq), storecodec.DecodeAuditRecord, fmt.Errorf("audit entry %d does not exist: %w", seq, errkind.NotFound))
}

// AppendAudit appends r; r.Seq must be the last record's Seq + 1 (Aborted
// otherwise). The transaction's comparison on the log's range makes a
// concurrent append from another controller fail the commit (Aborted).
func (tx *Tx) AppendAudit(r *model.AuditRecord) error {
	last, err := tx.LastAudit()
	if err != nil {
		return err
	}
	var next uint64 = 1
	if last != nil {
		next = last.Seq + 1
	}
	if r.Seq != next {
		return fmt.Errorf("audit entry numbered %d, but the next entry is %d; read the last entry and append in one transaction: %w", r.Seq, next, errkind.Aborted)
	}
	return putRecord(tx, numbered(collAudit, r.Seq), r, storecodec.EncodeAuditRecord)
}

// AuditRecords calls fn on every record, oldest first, until fn fails.
func (tx *Tx) AuditRecords(fn func(*model.AuditRecord) error) error {
	kvs, err := tx.list(collAudit+"/", false)
	if err != nil {
		return err
	}
	for _, e := range kvs {
		r, err := decodeAt(e.key, e.val, storecodec.DecodeAuditRecord)
		if err != nil {
			return err
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}
