package store

import (
	"errors"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/pkg/errkind"
)

// TestMigration0002: a file of schema version 1 with a deployment in it
// gains the sql_plans bucket; the deployment reads as before and has no
// plan until one is put.
func TestMigration0002(t *testing.T) {
	dir := t.TempDir()
	oldFile(t, dir, 1, func(db *bolt.DB) error {
		return db.Update(func(tx *bolt.Tx) error {
			if _, err := tx.Bucket(bucketDeployments).NextSequence(); err != nil {
				return err
			}
			return putSchema5(tx, bucketDeployments, u64(1), &model.Deployment{ID: "d-1", Environment: "prod", State: model.Activating, ActivateTime: time.Unix(1, 0)})
		})
	})

	s := open(t, dir)
	defer s.Close()
	err := s.update(func(tx *Tx) error {
		if v := tx.SchemaVersion(); v < 2 {
			t.Errorf("schema version = %d after Open, want at least 2", v)
		}
		d, err := tx.Deployment("d-1")
		if err != nil || d.State != model.Activating || d.SQLDone || d.SQLPending != 0 {
			t.Errorf("old deployment = %+v, %v", d, err)
		}
		if _, err := tx.SQLPlan("d-1"); !errors.Is(err, errkind.NotFound) {
			t.Errorf("SQLPlan of an old deployment: err = %v, want NotFound", err)
		}
		if err := tx.PutSQLPlan("d-1", []byte(`{"pending":[]}`)); err != nil {
			return err
		}
		got, err := tx.SQLPlan("d-1")
		if err != nil || string(got) != `{"pending":[]}` {
			t.Errorf("SQLPlan = %q, %v", got, err)
		}
		if err := tx.PutSQLPlan("x-1", nil); !errors.Is(err, errkind.InvalidArgument) {
			t.Errorf("PutSQLPlan with a bad id: err = %v, want InvalidArgument", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
