package etcdstore

import (
	"encoding/json"
	"fmt"

	"github.com/cutover-dev/cutover/pkg/errkind"
)

// encode and decode are the one codec of the store's values: the switch
// to the protobuf messages of controlplane/storecodec is an edit here.
func encode(v any) ([]byte, error) { return json.Marshal(v) }

func decode(key string, data []byte, v any) error {
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("decode record %s: %w: %v", key, errkind.DataLoss, err)
	}
	return nil
}
