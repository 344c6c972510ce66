package etcdstore

import (
	"encoding/json"
	"fmt"

	"github.com/cutover-dev/cutover/controlplane/storecodec"
	"github.com/cutover-dev/cutover/pkg/errkind"
)

// encode and decode are the codec of the records stored as one value: the
// protobuf messages of proto/cutover/storage/v1, through storecodec.
// Deployments are stored in parts (deployments.go).
func encode(v any) ([]byte, error) { return storecodec.Encode(v) }

func decode(key string, data []byte, v any) error {
	if err := storecodec.Decode(data, v); err != nil {
		return fmt.Errorf("record %s: %w", key, err)
	}
	return nil
}

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
