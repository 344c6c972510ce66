package stage

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/pkg/manifest"
)

// TestCopyContentInTheKernel copies a file larger than one piece: by
// copy_file_range on Linux, never through the agent, with the copied bytes
// going through the rate cap.
func TestCopyContentInTheKernel(t *testing.T) {
	dir := t.TempDir()
	data := bytes.Repeat([]byte("0123456789abcdef"), (copyPiece+12345)/16)
	src, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
	if err := os.WriteFile(src, data, 0o444); err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	c := &fakeClock{t: time.Unix(1000, 0)}
	lim := newLimiter(1<<20, c.now, c.sleep)
	method, err := copyContent(context.Background(), out, in, int64(len(data)), lim)
	if err != nil {
		t.Fatal(err)
	}
	if method != methodRange {
		t.Errorf("copied by %s, want %s", method, methodRange)
	}
	if lim.waited < 3*time.Second {
		t.Errorf("%d bytes copied at 1 MiB/s waited only %v", len(data), lim.waited)
	}
	got, err := os.ReadFile(dst)
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("copy differs from its source (%d bytes, %v)", len(got), err)
	}
}

// TestNoWriteIntoALinkedFile: a staging file that is a hard link to a
// staged release's file (a crash between the link and its record) is
// never opened for writing, and a staging directory holding one whose
// positions are not done is not resumed.
func TestNoWriteIntoALinkedFile(t *testing.T) {
	dir := t.TempDir()
	staged, staging := filepath.Join(dir, "staged"), filepath.Join(dir, "staging")
	if err := os.WriteFile(staged, []byte("verified content"), 0o444); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(staging, 0o700); err != nil {
		t.Fatal(err)
	}
	name := filepath.Join(staging, "f")
	if err := hardLink(staged, name); err != nil {
		t.Fatal(err)
	}
	for _, flag := range []int{os.O_WRONLY, os.O_WRONLY | os.O_TRUNC} {
		if f, err := openOwn(name, flag); err == nil {
			f.Close()
			t.Errorf("openOwn(%#x) opened a linked file", flag)
		}
	}
	if info, err := os.Stat(staged); err != nil || info.Mode().Perm() != 0o444 || info.Size() != int64(len("verified content")) {
		t.Errorf("the staged file changed: %v, %v", info, err)
	}
	m := &manifest.Manifest{Files: []manifest.File{{Path: "f", Mode: 0o644, Size: int64(len("verified content")),
		Chunks: []manifest.ChunkRef{{ID: manifest.HashChunk([]byte("verified content")), Size: int64(len("verified content"))}}}}}
	if skeletonIntact(staging, m, newBitmap(1)) {
		t.Error("a staging directory with a linked file not done would be resumed")
	}
	done := newBitmap(1)
	done.set(0)
	if !skeletonIntact(staging, m, done) {
		t.Error("a staging directory whose linked file is done would not be resumed")
	}
}

// TestSkeletonLeavesClonesSparse: the skeleton allocates the space of the
// files to be filled, not of those a clone is expected for.
func TestSkeletonLeavesClonesSparse(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "staging")
	const size = 1 << 20
	m := &manifest.Manifest{Application: "app", Files: []manifest.File{
		{Path: "cloned", Mode: 0o644, Size: size, Chunks: []manifest.ChunkRef{{ID: manifest.HashChunk([]byte("a")), Size: size}}},
		{Path: "filled", Mode: 0o644, Size: size, Chunks: []manifest.ChunkRef{{ID: manifest.HashChunk([]byte("b")), Size: size}}},
	}}
	if err := createSkeleton(dir, m, func(f *manifest.File) bool { return f.Path == "cloned" }); err != nil {
		t.Fatal(err)
	}
	allocated := func(name string) int64 {
		info, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if info.Size() != size {
			t.Fatalf("%s: size %d, want %d", name, info.Size(), size)
		}
		return info.Sys().(*syscall.Stat_t).Blocks * 512
	}
	if got := allocated("cloned"); got != 0 {
		t.Errorf("cloned: %d bytes allocated, want 0", got)
	}
	if got := allocated("filled"); got < size {
		t.Skipf("filled: %d bytes allocated: this file system has no fallocate", got)
	}
}
