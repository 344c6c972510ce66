package manifest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/cutover-dev/cutover/pkg/appspec"
	"github.com/cutover-dev/cutover/pkg/errkind"
)

// ChunkSink stores chunks as Build produces them. PutChunks may be called
// from several goroutines, one at a time (Build serializes the calls); it
// must copy any data it keeps after it returns.
type ChunkSink interface {
	PutChunks(chunks []Chunk) error
}

// sinkBatchBytes is how much chunk data Build hands to the sink at once.
const sinkBatchBytes = 4 << 20

// Build describes the directory dir as the release of application app with
// the given spec: it walks dir, refuses what cannot be part of a release
// (a symlink that leads outside dir or is absolute, a device, a socket, a
// pipe: errkind.InvalidArgument, naming the path), splits every regular file
// into content-defined chunks (using all cores) and hands the chunks to sink.
func Build(ctx context.Context, dir, app string, spec appspec.Spec, sink ChunkSink) (*Manifest, error) {
	m := &Manifest{Application: app, Spec: spec}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == dir {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		f := File{Path: rel, Mode: info.Mode() & (fs.ModePerm | fs.ModeType)}
		switch info.Mode().Type() {
		case 0:
			f.Size = info.Size()
		case fs.ModeDir:
		case fs.ModeSymlink:
			if f.Link, err = os.Readlink(p); err != nil {
				return err
			}
			f.Mode = fs.ModeSymlink | 0o777
			if err := ValidLink(rel, f.Link); err != nil {
				return fmt.Errorf("build output: %w", err)
			}
		default:
			return fmt.Errorf("build output: %q is a %v, which a release cannot hold: %w", rel, info.Mode().Type(), errkind.InvalidArgument)
		}
		if err := ValidPath(rel); err != nil {
			return fmt.Errorf("build output: %w", err)
		}
		m.Files = append(m.Files, f)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := m.checkLinks(); err != nil {
		return nil, fmt.Errorf("build output: %w", err)
	}
	if err := chunkFiles(ctx, dir, m.Files, sink); err != nil {
		return nil, err
	}
	return m, nil
}

// chunkFiles fills in the chunks of every regular file, several files at once.
func chunkFiles(ctx context.Context, dir string, files []File, sink ChunkSink) error {
	var sinkMu sync.Mutex
	put := func(batch []Chunk) error {
		sinkMu.Lock()
		defer sinkMu.Unlock()
		return sink.PutChunks(batch)
	}
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i := range files {
		if !files[i].IsRegular() {
			continue
		}
		f := &files[i]
		g.Go(func() error { return chunkFile(ctx, filepath.Join(dir, filepath.FromSlash(f.Path)), f, put) })
	}
	return g.Wait()
}

func chunkFile(ctx context.Context, name string, f *File, put func([]Chunk) error) error {
	r, err := os.Open(name)
	if err != nil {
		return err
	}
	defer r.Close()
	var (
		batch      []Chunk
		batchBytes int
		size       int64
	)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := put(batch)
		batch, batchBytes = nil, 0
		return err
	}
	c := NewChunker(r)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		data, err := c.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", f.Path, err)
		}
		id := HashChunk(data)
		f.Chunks = append(f.Chunks, ChunkRef{ID: id, Size: int64(len(data))})
		size += int64(len(data))
		batch = append(batch, Chunk{ID: id, Data: append([]byte(nil), data...)})
		if batchBytes += len(data); batchBytes >= sinkBatchBytes {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if size != f.Size {
		return fmt.Errorf("%s changed size while it was read (%d, then %d bytes): %w", f.Path, f.Size, size, errkind.Aborted)
	}
	return flush()
}
