package store

import (
	"testing"

	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/controlplane/model/storetest"
)

// TestContract runs the model.Store contract on a bbolt file in a
// temporary directory.
func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) model.Store {
		s, err := Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}
