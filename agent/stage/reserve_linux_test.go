package stage_test

import (
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/cutover-dev/cutover/agent/layout"
	"github.com/cutover-dev/cutover/pkg/errkind"
)

// TestFullDiskFailsBeforeFetching stages a 2 MiB release onto a 1 MiB
// tmpfs: the space is reserved when the files are created, so the stage
// fails with a clear error before a single chunk is fetched. It needs
// permission to mount (root); it is skipped without it.
func TestFullDiskFailsBeforeFetching(t *testing.T) {
	e := newEnv(t, nil)
	if err := syscall.Mount("tmpfs", e.root, "tmpfs", 0, "size=1m"); err != nil {
		t.Skipf("cannot mount a small tmpfs here (%v): needs root", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(e.root, syscall.MNT_DETACH) })
	id, _, m := e.fake.release(t, map[string]string{"data/big.bin": bigContent(3, 2<<20), "VERSION": "v1\n"})
	_, err := e.stage(t, id, nil)
	if !errors.Is(err, errkind.FailedPrecondition) || !strings.Contains(err.Error(), "not enough free space") {
		t.Fatalf("stage on a full disk = %v, want FailedPrecondition saying there is not enough free space", err)
	}
	for _, c := range m.ChunkIDs() {
		if n := e.fake.requests(c); n != 0 {
			t.Errorf("chunk %s was requested %d times before the disk was found too small", c, n)
		}
	}
	if _, err := os.Lstat(layout.ReleaseDir(e.root, "hello", id)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("release dir after the failure: %v", err)
	}
}
