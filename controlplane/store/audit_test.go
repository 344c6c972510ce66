package store

import (
	"errors"
	"fmt"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/pkg/errkind"
)

func TestAuditAppendListReopen(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	const n = 300 // past 255: keys must sort as numbers
	err := s.update(func(tx *Tx) error {
		if last, err := tx.LastAudit(); last != nil || err != nil {
			t.Errorf("LastAudit of an empty log = %+v, %v; want nil, nil", last, err)
		}
		for i := uint64(1); i <= n; i++ {
			r := &model.AuditRecord{Seq: i, Time: t0.Add(time.Duration(i)), Subject: "alice", Roles: []string{"admin"},
				Summary: fmt.Sprint("entry ", i), Hash: fmt.Sprint("h", i), PrevHash: fmt.Sprint("h", i-1)}
			if err := tx.AppendAudit(r); err != nil {
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

	s = open(t, dir)
	defer s.Close()
	err = s.update(func(tx *Tx) error {
		var seqs []uint64
		if err := tx.AuditRecords(func(r *model.AuditRecord) error {
			seqs = append(seqs, r.Seq)
			if r.Summary != fmt.Sprint("entry ", r.Seq) || !r.Time.Equal(t0.Add(time.Duration(r.Seq))) || r.Roles[0] != "admin" {
				t.Errorf("record %d = %+v", r.Seq, r)
			}
			return nil
		}); err != nil {
			return err
		}
		for i, seq := range seqs {
			if seq != uint64(i+1) {
				t.Fatalf("records out of order at %d: %v", i, seqs[:i+1])
			}
		}
		if len(seqs) != n {
			t.Errorf("%d records, want %d", len(seqs), n)
		}
		last, err := tx.LastAudit()
		if err != nil || last.Seq != n || last.Hash != fmt.Sprint("h", n) {
			t.Errorf("LastAudit = %+v, %v", last, err)
		}
		// Neither a gap nor an overwrite.
		for _, seq := range []uint64{n, n + 2, 0, 1} {
			if err := tx.AppendAudit(&model.AuditRecord{Seq: seq}); !errors.Is(err, errkind.Aborted) {
				t.Errorf("AppendAudit seq %d after %d: err = %v, want model.Aborted", seq, n, err)
			}
		}
		// PutAudit replaces (tamper tests and repairs).
		r, err := tx.Audit(7)
		if err != nil {
			return err
		}
		r.Summary = "changed"
		if err := tx.PutAudit(r); err != nil {
			return err
		}
		if got, err := tx.Audit(7); err != nil || got.Summary != "changed" || got.Hash != "h7" {
			t.Errorf("Audit(7) after PutAudit = %+v, %v", got, err)
		}
		if err := tx.PutAudit(&model.AuditRecord{}); !errors.Is(err, errkind.InvalidArgument) {
			t.Errorf("PutAudit seq 0: err = %v, want InvalidArgument", err)
		}
		if _, err := tx.Audit(n + 1); !errors.Is(err, errkind.NotFound) {
			t.Errorf("Audit(n+1): err = %v, want NotFound", err)
		}
		// fn's error stops the walk and comes back.
		stop, calls := errors.New("stop"), 0
		if err := tx.AuditRecords(func(*model.AuditRecord) error { calls++; return stop }); err != stop || calls != 1 {
			t.Errorf("AuditRecords with a failing fn = %v after %d calls", err, calls)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestAuditCorruptRecordIsDataLoss(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	defer s.Close()
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketAuditRecords).Put(u64(1), []byte("{not json")) }); err != nil {
		t.Fatal(err)
	}
	_ = s.view(func(tx *Tx) error {
		if _, err := tx.LastAudit(); !errors.Is(err, errkind.DataLoss) {
			t.Errorf("LastAudit: err = %v, want DataLoss", err)
		}
		if err := tx.AuditRecords(func(*model.AuditRecord) error { return nil }); !errors.Is(err, errkind.DataLoss) {
			t.Errorf("AuditRecords: err = %v, want DataLoss", err)
		}
		return nil
	})
}

// TestMigration0005: a file of schema version 4 gains an empty audit
// bucket, and keeps what it had.
func TestMigration0005(t *testing.T) {
	dir := t.TempDir()
	oldFile(t, dir, 4, func(db *bolt.DB) error {
		return db.Update(func(tx *bolt.Tx) error {
			return putSchema5(tx, bucketEnvironments, []byte("production"), &model.Environment{Name: "production"})
		})
	})

	s := open(t, dir)
	defer s.Close()
	err := s.update(func(tx *Tx) error {
		if v := tx.SchemaVersion(); v < 5 {
			t.Errorf("schema version = %d after Open, want at least 5", v)
		}
		if _, err := tx.Environment("production"); err != nil {
			t.Errorf("environment lost: %v", err)
		}
		if last, err := tx.LastAudit(); last != nil || err != nil {
			t.Errorf("LastAudit = %+v, %v; want an empty log", last, err)
		}
		return tx.AppendAudit(&model.AuditRecord{Seq: 1, Hash: "h1"})
	})
	if err != nil {
		t.Fatal(err)
	}
}
