package bench

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/cutover-dev/cutover/pkg/manifest"
)

// copyBuf is the buffer size of the raw TCP baseline, on both ends.
const copyBuf = 1 << 20

// rawTCP sends the bytes of files over a loopback TCP connection to a
// receiver in this process that reads and discards them, and returns the
// goodput in bytes per second. Files are read with read(2) (no sendfile),
// as an agent's chunks are read from a store.
func rawTCP(files []string) (float64, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer lis.Close()
	type result struct {
		n   int64
		err error
	}
	got := make(chan result, 1)
	go func() {
		conn, err := lis.Accept()
		if err != nil {
			got <- result{err: err}
			return
		}
		defer conn.Close()
		buf := make([]byte, copyBuf)
		var n int64
		for {
			k, err := conn.Read(buf)
			n += int64(k)
			if errors.Is(err, io.EOF) {
				got <- result{n: n}
				return
			}
			if err != nil {
				got <- result{n: n, err: err}
				return
			}
		}
	}()
	conn, err := net.Dial("tcp", lis.Addr().String())
	if err != nil {
		return 0, err
	}
	start := time.Now()
	var sent int64
	for _, name := range files {
		err := readFile(name, func(b []byte) error {
			_, err := conn.Write(b)
			sent += int64(len(b))
			return err
		})
		if err != nil {
			conn.Close()
			return 0, err
		}
	}
	_ = conn.(*net.TCPConn).CloseWrite()
	r := <-got
	took := time.Since(start)
	conn.Close()
	if r.err != nil {
		return 0, r.err
	}
	if r.n != sent {
		return 0, fmt.Errorf("raw TCP: sent %d bytes, received %d", sent, r.n)
	}
	return float64(sent) / took.Seconds(), nil
}

// diskSyncEvery is how often the disk baseline fsyncs, as the agent
// commits (stage.DefaultCommitBytes).
const diskSyncEvery = 32 << 20

// diskWrite copies files into dir, fsyncing each file every diskSyncEvery
// bytes and at its end, and returns the rate in bytes per second: how fast
// this disk makes the release's bytes durable, the floor under stage 1's
// time whatever the network and the code do.
func diskWrite(dir string, files []string) (float64, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return 0, err
	}
	var written int64
	start := time.Now()
	for i, name := range files {
		out, err := os.Create(filepath.Join(dir, fmt.Sprint(i)))
		if err != nil {
			return 0, err
		}
		unsynced := 0
		err = readFile(name, func(b []byte) error {
			if _, err := out.Write(b); err != nil {
				return err
			}
			written += int64(len(b))
			if unsynced += len(b); unsynced >= diskSyncEvery {
				unsynced = 0
				return out.Sync()
			}
			return nil
		})
		if err == nil {
			err = out.Sync()
		}
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return 0, err
		}
	}
	return float64(written) / time.Since(start).Seconds(), nil
}

// readFile reads the file name copyBuf bytes at a time and hands each block
// to fn (which must not keep it).
func readFile(name string, fn func(block []byte) error) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, copyBuf)
	for {
		k, err := f.Read(buf)
		if k > 0 {
			if err := fn(buf[:k]); err != nil {
				return err
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// storeOnlyBatch is how many chunks one transaction of the store-only
// baseline commits (the "≥64 chunks per transaction").
const storeOnlyBatch = 128

// storeOnly chunks files as a build does, then writes the chunks into a
// fresh bbolt file in dir, storeOnlyBatch per transaction, keyed by
// sequence (appended, pages filled) with the map freelist and
// NoFreelistSync, the fastest way bbolt ingests chunks; it returns the write
// rate in bytes per second (chunking and hashing not counted). It is the
// issue's "bbolt-only batched write rate of the same chunks".
func storeOnly(dir string, files []string) (float64, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return 0, err
	}
	db, err := bolt.Open(filepath.Join(dir, "chunks.db"), 0o600, &bolt.Options{
		Timeout: time.Second, FreelistType: bolt.FreelistMapType, NoFreelistSync: true})
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var (
		written int64
		took    time.Duration
		batch   []manifest.Chunk
	)
	flush := func() error {
		start := time.Now()
		err := db.Update(func(tx *bolt.Tx) error {
			b, err := tx.CreateBucketIfNotExists([]byte("chunks"))
			if err != nil {
				return err
			}
			b.FillPercent = 1
			for _, c := range batch {
				n, err := b.NextSequence()
				if err != nil {
					return err
				}
				if err := b.Put(binary.BigEndian.AppendUint64(nil, n), c.Data); err != nil {
					return err
				}
			}
			return nil
		})
		took += time.Since(start)
		for _, c := range batch {
			written += int64(len(c.Data))
		}
		batch = batch[:0]
		return err
	}
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return 0, err
		}
		c := manifest.NewChunker(f)
		for {
			data, err := c.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				f.Close()
				return 0, err
			}
			batch = append(batch, manifest.Chunk{ID: manifest.HashChunk(data), Data: append([]byte(nil), data...)})
			if len(batch) == storeOnlyBatch {
				if err := flush(); err != nil {
					f.Close()
					return 0, err
				}
			}
		}
		f.Close()
	}
	if err := flush(); err != nil {
		return 0, err
	}
	return float64(written) / took.Seconds(), nil
}
