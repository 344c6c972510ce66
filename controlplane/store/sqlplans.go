package store

import (
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/cutover-dev/cutover/pkg/errkind"
)

// createSQLPlans is migration 0002: the bucket of the SQL plans that
// prepare generates.
func createSQLPlans(tx *bolt.Tx) error {
	_, err := tx.CreateBucketIfNotExists(bucketSQLPlans)
	return err
}

// PutSQLPlan stores the SQL plan of deployment id: the JSON of a
// migrate.Plan, which the store keeps as it is given.
func (tx *Tx) PutSQLPlan(id string, plan []byte) error {
	key, ok := deploymentKey(id)
	if !ok {
		return fmt.Errorf("deployment id %q is not of the form d-<n>: %w", id, errkind.InvalidArgument)
	}
	return tx.tx.Bucket(bucketSQLPlans).Put(key, plan)
}

// SQLPlan returns a copy of the SQL plan stored for deployment id; NotFound
// when there is none (the deployment was not prepared, or was prepared
// before plans existed).
func (tx *Tx) SQLPlan(id string) ([]byte, error) {
	key, ok := deploymentKey(id)
	var raw []byte
	if ok {
		raw = tx.tx.Bucket(bucketSQLPlans).Get(key)
	}
	if raw == nil {
		return nil, fmt.Errorf("deployment %q has no SQL plan: it has not been prepared: %w", id, errkind.NotFound)
	}
	return append([]byte(nil), raw...), nil
}
