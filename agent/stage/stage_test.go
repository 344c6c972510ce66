package stage_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/agent/layout"
	"github.com/cutover-dev/cutover/agent/stage"
	"github.com/cutover-dev/cutover/agent/store"
	"github.com/cutover-dev/cutover/pkg/errkind"
	"github.com/cutover-dev/cutover/pkg/manifest"
)

type env struct {
	fake  *fakeController
	store *store.Store
	root  string
	st    *stage.Stager
}

func newEnv(t *testing.T, tune func(*stage.Config)) *env {
	t.Helper()
	e := &env{fake: newFake(), root: t.TempDir()}
	var err error
	if e.store, err = store.Open(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.store.Close() })
	cfg := stage.Config{Store: e.store, Root: e.root, Source: e.fake.serve(t)}
	if tune != nil {
		tune(&cfg)
	}
	if e.st, err = stage.New(cfg); err != nil {
		t.Fatal(err)
	}
	return e
}

// progressLog records reports, safe for concurrent use.
type progressLog struct {
	mu   sync.Mutex
	seen []stage.Progress
}

func (p *progressLog) add(x stage.Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seen = append(p.seen, x)
}

var sampleFiles = map[string]string{
	"bin/run.sh":      "#!/bin/sh\necho hi\n",
	"data/big.bin":    bigContent(1, 600<<10),
	"data/empty":      "",
	"data/text.txt":   strings.Repeat("hello, world\n", 40000),
	"VERSION":         "v1\n",
	"link-to-version": "->VERSION",
	"bin/up":          "->../data",
}

func (e *env) stage(t *testing.T, id string, log *progressLog) (stage.Progress, error) {
	t.Helper()
	var fn func(stage.Progress)
	if log != nil {
		fn = log.add
	}
	return e.st.Stage(context.Background(), []stage.Release{{Application: "hello", ID: id}}, 0, fn)
}

// sameTree compares a source tree with a staged one: entries, modes (the
// source's without write bits: staged releases are read-only), contents,
// link targets.
func sameTree(t *testing.T, want, got string) {
	t.Helper()
	seen := 0
	err := filepath.WalkDir(want, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(want, p)
		g := filepath.Join(got, rel)
		wi, _ := os.Lstat(p)
		gi, err := os.Lstat(g)
		if err != nil {
			t.Errorf("%s missing: %v", rel, err)
			return nil
		}
		seen++
		if wi.Mode().Type() != gi.Mode().Type() || (wi.Mode().Type() != fs.ModeSymlink && wi.Mode().Perm()&^0o222 != gi.Mode().Perm()) {
			t.Errorf("%s: mode %v, want %v without write bits", rel, gi.Mode(), wi.Mode())
		}
		switch wi.Mode().Type() {
		case fs.ModeSymlink:
			wl, _ := os.Readlink(p)
			gl, _ := os.Readlink(g)
			if wl != gl {
				t.Errorf("%s -> %q, want %q", rel, gl, wl)
			}
		case 0:
			wb, _ := os.ReadFile(p)
			gb, _ := os.ReadFile(g)
			if !bytes.Equal(wb, gb) {
				t.Errorf("%s: content differs", rel)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	_ = filepath.WalkDir(got, func(string, fs.DirEntry, error) error { n++; return nil })
	if n != seen {
		t.Errorf("%s has %d entries, want %d", got, n, seen)
	}
}

func TestStageMaterializesByteForByte(t *testing.T) {
	for _, compress := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "zstd"}[compress], func(t *testing.T) {
			e := newEnv(t, nil)
			e.fake.compress = compress
			id, src, m := e.fake.release(t, sampleFiles)
			var log progressLog
			p, err := e.stage(t, id, &log)
			if err != nil {
				t.Fatal(err)
			}
			sameTree(t, src, layout.ReleaseDir(e.root, "hello", id))
			if p.ReleaseBytes != m.Size() {
				t.Errorf("ReleaseBytes = %d, want %d", p.ReleaseBytes, m.Size())
			}
			var raw int64
			for _, cid := range m.ChunkIDs() {
				raw += int64(len(e.fake.chunks[cid]))
			}
			if !compress && p.TransferredBytes != raw {
				t.Errorf("TransferredBytes = %d, want %d", p.TransferredBytes, raw)
			}
			if compress && (p.TransferredBytes <= 0 || p.TransferredBytes >= raw) {
				t.Errorf("TransferredBytes = %d, want compressed size below %d", p.TransferredBytes, raw)
			}
			if len(log.seen) < 2 || log.seen[len(log.seen)-1] != p {
				t.Errorf("progress reports = %+v, want several ending with %+v", log.seen, p)
			}
			staged, err := e.st.Staged()
			if err != nil || len(staged["hello"]) != 1 || staged["hello"][0] != id {
				t.Errorf("Staged = %v, %v", staged, err)
			}
			entries, _ := os.ReadDir(layout.ReleasesDir(e.root, "hello"))
			if len(entries) != 1 {
				t.Errorf("releases dir holds %d entries, want only the release (no temp dirs)", len(entries))
			}
			if _, err := os.Lstat(layout.CurrentPath(e.root, "hello")); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("stage created current: %v", err)
			}

			// Again: nothing moves.
			before := e.fake.requests(m.ChunkIDs()[0])
			p, err = e.stage(t, id, nil)
			if err != nil || p.TransferredBytes != 0 {
				t.Errorf("second stage = %+v, %v; want 0 bytes", p, err)
			}
			if e.fake.requests(m.ChunkIDs()[0]) != before {
				t.Error("second stage fetched chunks again")
			}
		})
	}
}

func TestSecondReleaseFetchesOnlyNewChunks(t *testing.T) {
	e := newEnv(t, nil)
	id1, _, m1 := e.fake.release(t, sampleFiles)
	if _, err := e.stage(t, id1, nil); err != nil {
		t.Fatal(err)
	}
	files2 := map[string]string{}
	for k, v := range sampleFiles {
		files2[k] = v
	}
	files2["VERSION"] = "v2\n"
	id2, src2, m2 := e.fake.release(t, files2)
	p, err := e.stage(t, id2, nil)
	if err != nil {
		t.Fatal(err)
	}
	sameTree(t, src2, layout.ReleaseDir(e.root, "hello", id2))
	old := map[manifest.ChunkID]bool{}
	for _, c := range m1.ChunkIDs() {
		old[c] = true
	}
	var fresh int64
	for _, c := range m2.ChunkIDs() {
		if !old[c] {
			fresh += int64(len(e.fake.chunks[c]))
		}
	}
	if p.TransferredBytes != fresh || fresh == 0 {
		t.Errorf("TransferredBytes = %d, want only the new chunks' %d", p.TransferredBytes, fresh)
	}
}

func TestCorruptedChunkIsRefusedAndFetchedAgain(t *testing.T) {
	e := newEnv(t, nil)
	id, src, m := e.fake.release(t, sampleFiles)
	bad := m.ChunkIDs()[1]
	e.fake.corrupt[bad] = 2 // bad twice, good the third time
	if _, err := e.stage(t, id, nil); err != nil {
		t.Fatal(err)
	}
	if n := e.fake.requests(bad); n != 3 {
		t.Errorf("corrupted chunk requested %d times, want 3", n)
	}
	if n := e.fake.suspicions(bad); n != 2 {
		t.Errorf("corrupted chunk named suspect %d times, want 2 (each request after it failed)", n)
	}
	if n := e.fake.suspicions(m.ChunkIDs()[0]); n != 0 {
		t.Errorf("good chunk named suspect %d times", n)
	}
	if n := e.fake.requests(m.ChunkIDs()[0]); n != 1 {
		t.Errorf("good chunk requested %d times, want 1", n)
	}
	sameTree(t, src, layout.ReleaseDir(e.root, "hello", id))
}

func TestChunkThatNeverVerifiesFailsTheStage(t *testing.T) {
	e := newEnv(t, nil)
	id, _, m := e.fake.release(t, sampleFiles)
	bad := m.ChunkIDs()[0]
	e.fake.corrupt[bad] = -1
	_, err := e.stage(t, id, nil)
	if !errors.Is(err, errkind.DataLoss) || !strings.Contains(err.Error(), bad.String()) {
		t.Fatalf("err = %v, want DataLoss naming chunk %s", err, bad)
	}
	if n := e.fake.requests(bad); n != stage.MaxChunkFailures {
		t.Errorf("bad chunk requested %d times, want %d", n, stage.MaxChunkFailures)
	}
	if _, err := os.Lstat(layout.ReleaseDir(e.root, "hello", id)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("release dir exists after a failed stage: %v", err)
	}
	// What was written stays in the staging dir, for the next attempt.
	if entries, _ := os.ReadDir(layout.ReleasesDir(e.root, "hello")); len(entries) != 1 || entries[0].Name() != ".staging-"+id {
		t.Errorf("the releases dir holds %v after a failed stage, want only the staging dir", entries)
	}
	if staged, _ := e.st.Staged(); len(staged) != 0 {
		t.Errorf("Staged = %v after a failed stage", staged)
	}
	// Once the controller serves it intact, staging again fetches only it.
	e.fake.corrupt[bad] = 0
	if _, err := e.stage(t, id, nil); err != nil {
		t.Fatal(err)
	}
	for _, c := range m.ChunkIDs() {
		want := 1
		if c == bad {
			want = stage.MaxChunkFailures + 1
		}
		if got := e.fake.requests(c); got != want {
			t.Errorf("chunk %s requested %d times, want %d", c, got, want)
		}
	}
}

func TestResumeDoesNotFetchCommittedChunksAgain(t *testing.T) {
	e := newEnv(t, func(c *stage.Config) { c.FetchIDs = 3; c.CommitBytes = 1; c.RetryFor = time.Nanosecond })
	id, src, m := e.fake.release(t, sampleFiles)
	ids := m.ChunkIDs()
	if len(ids) < 6 {
		t.Fatalf("sample has %d chunks; need at least 6", len(ids))
	}
	e.fake.failAfter = 4 // first FetchChunks: 3 chunks; second: 1 chunk, then the failure
	if _, err := e.stage(t, id, nil); !errors.Is(err, errkind.Unavailable) {
		t.Fatalf("first stage err = %v, want Unavailable", err)
	}
	// The first 4 chunks are written and recorded; the retry must not ask for them.
	if _, err := e.stage(t, id, nil); err != nil {
		t.Fatal(err)
	}
	for i, c := range ids {
		want := 1
		if i == 4 {
			want = 2 // requested when the failure hit, not sent
		}
		if got := e.fake.requests(c); got != want {
			t.Errorf("chunk %d requested %d times, want %d", i, got, want)
		}
	}
	sameTree(t, src, layout.ReleaseDir(e.root, "hello", id))
}

func TestManifestNotMatchingItsIDIsRefused(t *testing.T) {
	e := newEnv(t, nil)
	id, _, _ := e.fake.release(t, sampleFiles)
	other, _, _ := e.fake.release(t, map[string]string{"x": "y"})
	e.fake.manifests[other] = e.fake.manifests[id] // serve the wrong bytes
	_, err := e.stage(t, other, nil)
	if !errors.Is(err, errkind.DataLoss) {
		t.Fatalf("err = %v, want DataLoss", err)
	}
	if _, err := os.Lstat(layout.AppDir(e.root, "hello")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("app dir created for a refused manifest: %v", err)
	}
}

func TestHostileManifestIsRefused(t *testing.T) {
	e := newEnv(t, nil)
	m := &manifest.Manifest{Application: "hello", Files: []manifest.File{
		{Path: "d", Mode: fs.ModeSymlink | 0o777, Link: "."},
		{Path: "s", Mode: fs.ModeSymlink | 0o777, Link: "d/d/d/../../.."},
	}}
	b := m.Encode()
	id := manifest.ReleaseID(b)
	e.fake.manifests[id] = b
	_, err := e.stage(t, id, nil)
	if !errors.Is(err, errkind.InvalidArgument) {
		t.Fatalf("err = %v, want InvalidArgument", err)
	}
	if _, err := os.Lstat(layout.AppDir(e.root, "hello")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("app dir created for a hostile manifest: %v", err)
	}
}

func TestTamperedReleaseIsMaterializedAgain(t *testing.T) {
	e := newEnv(t, nil)
	id, src, _ := e.fake.release(t, sampleFiles)
	if _, err := e.stage(t, id, nil); err != nil {
		t.Fatal(err)
	}
	dir := layout.ReleaseDir(e.root, "hello", id)
	if err := os.WriteFile(filepath.Join(dir, "VERSION"), []byte("v9\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "extra"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := e.stage(t, id, nil); err != nil {
		t.Fatal(err)
	}
	sameTree(t, src, dir)
}

func TestDrop(t *testing.T) {
	e := newEnv(t, nil)
	id1, _, m1 := e.fake.release(t, sampleFiles)
	id2, _, _ := e.fake.release(t, map[string]string{"VERSION": "v2\n"})
	for _, id := range []string{id1, id2} {
		if _, err := e.stage(t, id, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(layout.CurrentTarget(id2), layout.CurrentPath(e.root, "hello")); err != nil {
		t.Fatal(err)
	}
	if err := e.st.Drop(context.Background(), []stage.Release{{Application: "hello", ID: id2}}, nil); err != nil {
		t.Fatalf("drop of the running release: %v", err)
	}
	if _, err := os.Stat(layout.ReleaseDir(e.root, "hello", id2)); err != nil {
		t.Fatalf("the running release was dropped: %v", err)
	}
	kept := func(stage.Release) bool { return true }
	if err := e.st.Drop(context.Background(), []stage.Release{{Application: "hello", ID: id1}}, kept); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(layout.ReleaseDir(e.root, "hello", id1)); err != nil {
		t.Fatalf("a release that keep wants was dropped: %v", err)
	}
	if err := e.st.Drop(context.Background(), []stage.Release{{Application: "hello", ID: id1}}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(layout.ReleaseDir(e.root, "hello", id1)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("dropped release dir still there: %v", err)
	}
	if staged, _ := e.st.Staged(); len(staged["hello"]) != 1 || staged["hello"][0] != id2 {
		t.Errorf("Staged after drop = %v", staged)
	}
	held, err := stage.Held(e.store)
	if err != nil {
		t.Fatal(err)
	}
	if held[m1.ChunkIDs()[0]] {
		t.Error("chunk of the dropped release is still held")
	}
	entries, _ := os.ReadDir(layout.ReleasesDir(e.root, "hello"))
	if len(entries) != 1 {
		t.Errorf("releases dir holds %d entries, want 1", len(entries))
	}
}

func TestRunningReleaseIsNeverRewritten(t *testing.T) {
	e := newEnv(t, nil)
	id, _, _ := e.fake.release(t, sampleFiles)
	if _, err := e.stage(t, id, nil); err != nil {
		t.Fatal(err)
	}
	dir := layout.ReleaseDir(e.root, "hello", id)
	if err := os.Symlink(layout.CurrentTarget(id), layout.CurrentPath(e.root, "hello")); err != nil {
		t.Fatal(err)
	}
	appFile := filepath.Join(dir, "written-by-the-app.log")
	if err := os.WriteFile(appFile, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := e.stage(t, id, nil); err != nil {
		t.Fatalf("stage of the running release: %v", err)
	}
	if _, err := os.Stat(appFile); err != nil {
		t.Errorf("the running release was rewritten: %v", err)
	}
}

func TestCleanRemovesLeftovers(t *testing.T) {
	e := newEnv(t, func(c *stage.Config) { c.RetryFor, c.CommitBytes = time.Nanosecond, 1 })
	id, _, _ := e.fake.release(t, sampleFiles)
	if _, err := e.stage(t, id, nil); err != nil {
		t.Fatal(err)
	}
	// An interrupted staging that recorded a chunk: its dir is kept, to
	// resume in. (One that recorded nothing has nothing to resume.)
	other, _, _ := e.fake.release(t, map[string]string{"VERSION": "v2\n", "NEWS": "news\n"})
	e.fake.failAfter = e.fake.sent + 1 // sent counts every chunk sent so far
	if _, err := e.st.Stage(context.Background(), []stage.Release{{Application: "hello", ID: other}}, 0, nil); err == nil {
		t.Fatal("the interrupted staging succeeded")
	}
	releases := layout.ReleasesDir(e.root, "hello")
	for _, name := range []string{".staging-abc-123", ".staging-" + id, ".trash-456"} {
		if err := os.MkdirAll(filepath.Join(releases, name, "sub"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.st.Clean(); err != nil {
		t.Fatal(err)
	}
	var names []string
	entries, _ := os.ReadDir(releases)
	for _, e := range entries {
		names = append(names, e.Name())
	}
	want := []string{".staging-" + other, id}
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Errorf("releases dir after Clean = %v, want %v", names, want)
	}
}

func TestHostileNamesAreRefused(t *testing.T) {
	e := newEnv(t, nil)
	outside := filepath.Join(e.root, "..", "victim")
	if err := os.MkdirAll(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, r := range []stage.Release{{Application: "..", ID: "victim"}, {Application: "hello", ID: "../../victim"}} {
		if _, err := e.st.Stage(context.Background(), []stage.Release{r}, 0, nil); !errors.Is(err, errkind.InvalidArgument) {
			t.Errorf("Stage(%+v) = %v, want InvalidArgument", r, err)
		}
		if err := e.st.Drop(context.Background(), []stage.Release{r}, nil); !errors.Is(err, errkind.InvalidArgument) {
			t.Errorf("Drop(%+v) = %v, want InvalidArgument", r, err)
		}
	}
	if _, err := os.Stat(outside); err != nil {
		t.Errorf("a directory outside the root was touched: %v", err)
	}
}

func TestUnavailableControllerIsRetried(t *testing.T) {
	e := newEnv(t, func(c *stage.Config) { c.FetchIDs = 3; c.CommitBytes = 1 })
	id, src, m := e.fake.release(t, sampleFiles)
	e.fake.failAfter = 4 // one failure in the middle: retried within the same stage
	if _, err := e.stage(t, id, nil); err != nil {
		t.Fatal(err)
	}
	for i, c := range m.ChunkIDs() {
		want := 1
		if i == 4 {
			want = 2
		}
		if got := e.fake.requests(c); got != want {
			t.Errorf("chunk %d requested %d times, want %d", i, got, want)
		}
	}
	sameTree(t, src, layout.ReleaseDir(e.root, "hello", id))
}

func TestControllerAwayTooLongFailsTheStage(t *testing.T) {
	e := newEnv(t, func(c *stage.Config) { c.RetryFor = 300 * time.Millisecond })
	id, _, _ := e.fake.release(t, sampleFiles)
	e.fake.manifestDown = true
	if _, err := e.stage(t, id, nil); !errors.Is(err, errkind.Unavailable) {
		t.Fatalf("err = %v, want Unavailable", err)
	}
	if n := e.fake.manifestCalls(); n < 2 {
		t.Errorf("GetManifest called %d times, want retries", n)
	}
}

func TestReadOnlyDirsAreKeptAndCanBeDropped(t *testing.T) {
	e := newEnv(t, nil)
	id, src, _ := e.fake.release(t, map[string]string{"ro/file": "x", "VERSION": "v1"})
	if err := os.Chmod(filepath.Join(src, "ro"), 0o555); err != nil {
		t.Fatal(err)
	}
	// Build again with the read-only dir (release() built it writable).
	m, err := manifest.Build(context.Background(), src, "hello", appspecFor("hello"), e.fake)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(filepath.Join(src, "ro"), 0o755) })
	b := m.Encode()
	id = manifest.ReleaseID(b)
	e.fake.manifests[id] = b
	if _, err := e.stage(t, id, nil); err != nil {
		t.Fatal(err)
	}
	sameTree(t, src, layout.ReleaseDir(e.root, "hello", id))
	if err := e.st.Drop(context.Background(), []stage.Release{{Application: "hello", ID: id}}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(layout.ReleaseDir(e.root, "hello", id)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("release with a read-only dir not dropped: %v", err)
	}
}

func TestPruneKeepsTheNewestTheRunningAndTheNeeded(t *testing.T) {
	e := newEnv(t, nil)
	var ids []string
	var ms []*manifest.Manifest
	for i := range 5 {
		id, _, m := e.fake.release(t, map[string]string{"VERSION": fmt.Sprintf("v%d\n", i)})
		if _, err := e.stage(t, id, nil); err != nil {
			t.Fatal(err)
		}
		ids, ms = append(ids, id), append(ms, m)
	}
	if err := os.Symlink(layout.CurrentTarget(ids[0]), layout.CurrentPath(e.root, "hello")); err != nil {
		t.Fatal(err)
	}
	needed := func(r stage.Release) bool { return r.ID == ids[1] }
	if err := e.st.Prune(context.Background(), 2, needed); err != nil {
		t.Fatal(err)
	}
	want := []bool{true, true, false, true, true} // running, needed, dropped, newest two
	staged, _ := e.st.Staged()
	for i, id := range ids {
		has := slices.Contains(staged["hello"], id)
		_, err := os.Stat(layout.ReleaseDir(e.root, "hello", id))
		if has != want[i] || (err == nil) != want[i] {
			t.Errorf("v%d: staged %v, dir %v; want kept %v", i, has, err == nil, want[i])
		}
	}
	held, err := stage.Held(e.store)
	if err != nil {
		t.Fatal(err)
	}
	if held[ms[2].Files[0].Chunks[0].ID] {
		t.Error("the dropped release's chunk is still held")
	}
}
