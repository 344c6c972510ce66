package stage_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/cutover-dev/cutover/agent/layout"
	"github.com/cutover-dev/cutover/agent/stage"
	"github.com/cutover-dev/cutover/agent/store"
	"github.com/cutover-dev/cutover/pkg/errkind"
	"github.com/cutover-dev/cutover/pkg/manifest"
)

// v2Files is sampleFiles with VERSION changed.
func v2Files() map[string]string {
	out := map[string]string{}
	for k, v := range sampleFiles {
		out[k] = v
	}
	out["VERSION"] = "v2\n"
	return out
}

// unchangedBytes is the size of the non-empty regular files of m whose
// content old also has.
func unchangedBytes(old, m *manifest.Manifest) int64 {
	have := map[string]bool{}
	for _, f := range old.Files {
		have[key(f)] = true
	}
	var n int64
	for _, f := range m.Files {
		if f.IsRegular() && f.Size > 0 && have[key(f)] {
			n += f.Size
		}
	}
	return n
}

func key(f manifest.File) string {
	var s string
	for _, c := range f.Chunks {
		s += c.ID.String()
	}
	return s
}

func TestUnchangedFilesAreCloned(t *testing.T) {
	e := newEnv(t, nil)
	id1, _, m1 := e.fake.release(t, sampleFiles)
	if _, err := e.stage(t, id1, nil); err != nil {
		t.Fatal(err)
	}
	id2, src2, m2 := e.fake.release(t, v2Files())
	p, err := e.stage(t, id2, nil)
	if err != nil {
		t.Fatal(err)
	}
	sameTree(t, src2, layout.ReleaseDir(e.root, "hello", id2))
	want := unchangedBytes(m1, m2)
	if want == 0 || want >= m2.Size() {
		t.Fatalf("test release: %d unchanged bytes of %d", want, m2.Size())
	}
	if p.ClonedBytes != want {
		t.Errorf("ClonedBytes = %d, want the unchanged files' %d", p.ClonedBytes, want)
	}
	if p.ReusedBytes < p.ClonedBytes || p.TransferredBytes != int64(len("v2\n")) {
		t.Errorf("progress %+v: want the cloned bytes reused and only VERSION fetched", p)
	}
}

func TestStagedReleaseIsReadOnly(t *testing.T) {
	e := newEnv(t, nil)
	id, _, _ := e.fake.release(t, sampleFiles)
	if _, err := e.stage(t, id, nil); err != nil {
		t.Fatal(err)
	}
	dir := layout.ReleaseDir(e.root, "hello", id)
	want := map[string]fs.FileMode{".": 0o555, "bin": 0o555, "data": 0o555, "bin/run.sh": 0o555,
		"VERSION": 0o444, "data/big.bin": 0o444, "data/empty": 0o444, "data/text.txt": 0o444}
	for p, mode := range want {
		info, err := os.Lstat(filepath.Join(dir, p))
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm() != mode {
			t.Errorf("%s has mode %v, want %v", p, info.Mode().Perm(), mode)
		}
	}
	if os.Geteuid() != 0 {
		if err := os.WriteFile(filepath.Join(dir, "VERSION"), []byte("x"), 0o644); !errors.Is(err, fs.ErrPermission) {
			t.Errorf("writing a staged file: %v, want permission denied", err)
		}
	}
	if err := e.st.Drop(context.Background(), []stage.Release{{Application: "hello", ID: id}}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("read-only release not dropped: %v", err)
	}
}

// TestDamagedCloneSourceIsCaughtByArm damages a file of v1 behind the
// agent's back, keeping it read-only: v2 clones it without hashing, and
// arm's checks find the damage, which Reverify repairs.
func TestDamagedCloneSourceIsCaughtByArm(t *testing.T) {
	e := newEnv(t, nil)
	id1, _, _ := e.fake.release(t, sampleFiles)
	if _, err := e.stage(t, id1, nil); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(layout.ReleaseDir(e.root, "hello", id1), "data", "big.bin")
	b, err := os.ReadFile(big)
	if err != nil {
		t.Fatal(err)
	}
	b[1000] ^= 0xff
	if err := os.Chmod(big, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(big, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(big, 0o444); err != nil {
		t.Fatal(err)
	}
	id2, src2, _ := e.fake.release(t, v2Files())
	p, err := e.stage(t, id2, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.ClonedBytes == 0 {
		t.Fatal("nothing was cloned")
	}
	v2 := []stage.Release{{Application: "hello", ID: id2}}
	if err := e.st.Check(v2); !errors.Is(err, errkind.FailedPrecondition) {
		t.Fatalf("arm's check of a release cloned from a damaged file = %v, want FailedPrecondition", err)
	}
	if _, err := e.st.Reverify(context.Background(), v2); err != nil {
		t.Fatal(err)
	}
	if err := e.st.Check(v2); err != nil {
		t.Errorf("after Reverify: %v", err)
	}
	sameTree(t, src2, layout.ReleaseDir(e.root, "hello", id2))
}

// commits returns how many write transactions e's store has committed.
func (e *env) commits(t *testing.T) uint64 {
	t.Helper()
	var n uint64
	if err := e.store.View(func(tx *store.Tx) error { n = tx.Commits(); return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestV2StageCommits counts the store commits (two fdatasyncs each) of a
// v2's stage, which on a loaded host wait on the file system's journal
// behind every other writer: the manifest's record and the staged state;
// nothing else (the fill's positions, all written in one batch, are not
// recorded: the staged state follows).
func TestV2StageCommits(t *testing.T) {
	e := newEnv(t, nil)
	id1, _, _ := e.fake.release(t, sampleFiles)
	if _, err := e.stage(t, id1, nil); err != nil {
		t.Fatal(err)
	}
	id2, _, _ := e.fake.release(t, v2Files())
	before := e.commits(t)
	if _, err := e.stage(t, id2, nil); err != nil {
		t.Fatal(err)
	}
	if got, want := e.commits(t)-before, uint64(2); got != want {
		t.Errorf("a v2's stage made %d store commits, want %d", got, want)
	}
}
