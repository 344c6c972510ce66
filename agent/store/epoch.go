package store

import (
	"encoding/binary"

	bolt "go.etcd.io/bbolt"
)

// keyEpoch, in meta, holds the highest controller epoch the agent has seen
// (uint64, big-endian; absent: 0).
var keyEpoch = []byte("leader_epoch")

// AdmitEpoch decides whether a command from a controller at epoch may run:
// it may unless a higher epoch was seen before. A higher epoch than any
// seen is recorded, durably, before AdmitEpoch returns, so that the
// refusal of an older leader survives a restart of the agent. highest is
// the highest epoch seen, epoch included.
func (s *Store) AdmitEpoch(epoch uint64) (ok bool, highest uint64, err error) {
	var seen uint64
	if err := s.db.View(func(tx *bolt.Tx) error {
		seen = readEpoch(tx)
		return nil
	}); err != nil {
		return false, 0, err
	}
	if epoch <= seen { // the common case: no write
		return epoch == seen, seen, nil
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		if seen = readEpoch(tx); epoch <= seen {
			return nil
		}
		seen = epoch
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], epoch)
		return tx.Bucket(bucketMeta).Put(keyEpoch, b[:])
	})
	return err == nil && epoch >= seen, seen, err
}

func readEpoch(tx *bolt.Tx) uint64 {
	if b := tx.Bucket(bucketMeta).Get(keyEpoch); len(b) == 8 {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}
