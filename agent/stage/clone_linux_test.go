package stage

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestCopyContentInTheKernel copies a file larger than one piece: by
// reflink or copy_file_range on Linux, never through the agent, with the
// copied bytes going through the rate cap.
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
	if method != "reflink" && method != "copy_file_range" {
		t.Errorf("copied by %s, want reflink or copy_file_range", method)
	}
	if method == "copy_file_range" && lim.waited < 3*time.Second {
		t.Errorf("%d bytes copied at 1 MiB/s waited only %v", len(data), lim.waited)
	}
	got, err := os.ReadFile(dst)
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("copy differs from its source (%d bytes, %v)", len(got), err)
	}
}
