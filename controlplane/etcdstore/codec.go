package etcdstore

import (
	"encoding/json"
	"fmt"

	"github.com/cutover-dev/cutover/pkg/errkind"
)

// manifestHead is manifests/<id>: what a manifest's parts must add up to.
// It is this store's own bookkeeping, not a record of the model: JSON.
type manifestHead struct {
	Size   int    `json:"size"`
	Parts  int    `json:"parts"`
	SHA256 string `json:"sha256"`
}

// getHead reads manifests/<id>; nil when there is none.
func getHead(tx *Tx, id string) (*manifestHead, error) {
	raw, ok, err := tx.get(named(collManifests, id))
	if err != nil || !ok {
		return nil, err
	}
	h := new(manifestHead)
	if err := json.Unmarshal(raw, h); err != nil {
		return nil, fmt.Errorf("manifest record of release %s: %w: %v", id, errkind.DataLoss, err)
	}
	return h, nil
}

func putHead(tx *Tx, id string, h manifestHead) error {
	raw, err := json.Marshal(h)
	if err != nil {
		return err
	}
	return tx.put(named(collManifests, id), raw)
}
