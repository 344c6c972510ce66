package store

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Check opens DATA_DIR/FileName read-only, while no process holds it, and
// runs bbolt's consistency check: nil, or every problem it found (for
// fault tests and operators after a crash).
func Check(dataDir string) error {
	path := filepath.Join(dataDir, FileName)
	db, err := bolt.Open(path, 0o400, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		return fmt.Errorf("open %s read-only: %w", path, err)
	}
	defer db.Close()
	var problems []error
	err = db.View(func(tx *bolt.Tx) error {
		for e := range tx.Check() {
			problems = append(problems, e)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s fails bbolt's check: %w", path, errors.Join(problems...))
	}
	return nil
}
