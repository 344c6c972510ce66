package stage_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/cutover-dev/cutover/agent/layout"
	"github.com/cutover-dev/cutover/agent/stage"
	"github.com/cutover-dev/cutover/pkg/errkind"
	"golang.org/x/sys/unix"
)

// Hard links between releases, on a file system without reflinks (ext4,
// tmpfs): an unchanged file with the same mode is the previous release's
// inode; a damaged shared inode is caught by arm and replaced in the
// release being armed by a new inode.

// inode returns name's inode number and link count.
func inode(t *testing.T, name string) (ino, nlink uint64) {
	t.Helper()
	info, err := os.Lstat(name)
	if err != nil {
		t.Fatal(err)
	}
	st := info.Sys().(*syscall.Stat_t)
	return st.Ino, uint64(st.Nlink)
}

// skipIfReflinks skips the test where dir's file system shares blocks
// (FICLONE works): clones are reflinks there, never hard links.
func skipIfReflinks(t *testing.T, dir string) {
	t.Helper()
	a, err := os.Create(filepath.Join(dir, ".probe-a"))
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(a.Name())
	defer a.Close()
	if _, err := a.WriteString("probe"); err != nil {
		t.Fatal(err)
	}
	b, err := os.Create(filepath.Join(dir, ".probe-b"))
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(b.Name())
	defer b.Close()
	if unix.IoctlFileClone(int(b.Fd()), int(a.Fd())) == nil {
		t.Skipf("%s has reflinks: unchanged files are reflinked, not linked", dir)
	}
}

// v2WithModes is v2Files plus bin/text.sh, text.txt's content with exec
// bits: same content, another mode, so it cannot share text.txt's inode.
func v2WithModes() map[string]string {
	out := v2Files()
	out["bin/text.sh"] = sampleFiles["data/text.txt"]
	return out
}

func TestUnchangedFilesAreHardLinked(t *testing.T) {
	e := newEnv(t, nil)
	skipIfReflinks(t, e.root)
	id1, _, _ := e.fake.release(t, sampleFiles)
	if _, err := e.stage(t, id1, nil); err != nil {
		t.Fatal(err)
	}
	id2, src2, _ := e.fake.release(t, v2WithModes())
	if _, err := e.stage(t, id2, nil); err != nil {
		t.Fatal(err)
	}
	v1, v2 := layout.ReleaseDir(e.root, "hello", id1), layout.ReleaseDir(e.root, "hello", id2)
	sameTree(t, src2, v2) // contents and read-only modes
	tests := []struct {
		path   string
		shared bool
	}{
		{"data/big.bin", true},
		{"data/text.txt", true},
		{"bin/run.sh", true}, // 0555 in both
		{"VERSION", false},   // changed
		{"data/empty", false},
	}
	for _, tt := range tests {
		ino1, _ := inode(t, filepath.Join(v1, tt.path))
		ino2, n := inode(t, filepath.Join(v2, tt.path))
		if (ino1 == ino2) != tt.shared {
			t.Errorf("%s: v1 inode %d, v2 inode %d; want shared=%v", tt.path, ino1, ino2, tt.shared)
		}
		if tt.shared && n != 2 {
			t.Errorf("%s: %d links, want 2", tt.path, n)
		}
	}
	// Same content as data/text.txt, another mode: a copy, with its own mode.
	inoText, _ := inode(t, filepath.Join(v1, "data/text.txt"))
	inoSh, n := inode(t, filepath.Join(v2, "bin/text.sh"))
	if inoSh == inoText || n != 1 {
		t.Errorf("bin/text.sh (0555) shares data/text.txt's inode (0444): inode %d, %d links", inoSh, n)
	}
	if err := e.st.Check([]stage.Release{{Application: "hello", ID: id1}, {Application: "hello", ID: id2}}); err != nil {
		t.Errorf("arm's check of both releases: %v", err)
	}
	// Dropping v1 unlinks its names; v2's stay whole.
	if err := e.st.Drop(context.Background(), []stage.Release{{Application: "hello", ID: id1}}, nil); err != nil {
		t.Fatal(err)
	}
	if _, n := inode(t, filepath.Join(v2, "data/big.bin")); n != 1 {
		t.Errorf("after v1's drop, v2's data/big.bin has %d links, want 1", n)
	}
	sameTree(t, src2, v2)
}

// TestDamagedLinkedFileIsReplacedByANewInode damages the inode v1 and v2
// share, as root could, through v2's name. Arm's check of v2 finds it;
// Reverify writes v2's file again as a new inode renamed over v2's name.
// v1's name keeps the old inode, damaged as it is (nothing writes a
// release's file in place), now with one link; arm of v1 (a rollback)
// finds it and repairs it the same way.
func TestDamagedLinkedFileIsReplacedByANewInode(t *testing.T) {
	e := newEnv(t, nil)
	skipIfReflinks(t, e.root)
	id1, src1, _ := e.fake.release(t, sampleFiles)
	if _, err := e.stage(t, id1, nil); err != nil {
		t.Fatal(err)
	}
	id2, src2, _ := e.fake.release(t, v2Files())
	if _, err := e.stage(t, id2, nil); err != nil {
		t.Fatal(err)
	}
	v1, v2 := layout.ReleaseDir(e.root, "hello", id1), layout.ReleaseDir(e.root, "hello", id2)
	big1, big2 := filepath.Join(v1, "data/big.bin"), filepath.Join(v2, "data/big.bin")
	shared, n := inode(t, big2)
	if ino1, _ := inode(t, big1); ino1 != shared || n != 2 {
		t.Fatalf("data/big.bin not linked (v1 inode %d, v2 inode %d, %d links)", ino1, shared, n)
	}
	damageInPlace(t, big2, 1000)

	r1, r2 := []stage.Release{{Application: "hello", ID: id1}}, []stage.Release{{Application: "hello", ID: id2}}
	if err := e.st.Check(r2); !errors.Is(err, errkind.FailedPrecondition) {
		t.Fatalf("arm's check of v2 with a damaged shared file = %v, want FailedPrecondition", err)
	}
	if _, err := e.st.Reverify(context.Background(), r2); err != nil {
		t.Fatal(err)
	}
	if err := e.st.Check(r2); err != nil {
		t.Errorf("v2 after Reverify: %v", err)
	}
	sameTree(t, src2, v2)
	if ino, n := inode(t, big2); ino == shared || n != 1 {
		t.Errorf("v2's repaired data/big.bin: inode %d (the shared one was %d), %d links; want a new inode with 1 link", ino, shared, n)
	}
	if ino, n := inode(t, big1); ino != shared || n != 1 {
		t.Errorf("v1's data/big.bin: inode %d, %d links; want the old inode %d, left alone, with 1 link", ino, n, shared)
	}
	if err := e.st.Check(r1); !errors.Is(err, errkind.FailedPrecondition) {
		t.Fatalf("v1 still names the damaged inode; its check = %v, want FailedPrecondition", err)
	}
	if _, err := e.st.Reverify(context.Background(), r1); err != nil {
		t.Fatal(err)
	}
	sameTree(t, src1, v1)
	if ino, _ := inode(t, big1); ino == shared {
		t.Error("v1's data/big.bin repaired in place; want a new inode")
	}
}

// damageInPlace flips the byte at off of the read-only file name, writing
// into its inode (as root could), and leaves it read-only.
func damageInPlace(t *testing.T, name string, off int64) {
	t.Helper()
	info, err := os.Lstat(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(name, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(name, info.Mode().Perm()); err != nil {
		t.Fatal(err)
	}
}
