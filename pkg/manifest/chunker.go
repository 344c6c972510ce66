package manifest

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"math/bits"
)

// Chunk sizes of the content-defined chunker (FastCDC with normalized
// chunking, level 2): chunks average about AvgChunkSize bytes and are never
// smaller than MinChunkSize (except a file's last) nor larger than MaxChunkSize.
const (
	AvgChunkSize = 64 << 10
	MinChunkSize = AvgChunkSize / 4
	MaxChunkSize = AvgChunkSize * 4
)

var (
	// gear maps each byte value to a pseudo-random 64-bit number. It is derived
	// from SHA-256 so that it is fixed forever: changing it would change every
	// chunk boundary, and so every release id.
	gear = func() (t [256]uint64) {
		for i := range t {
			sum := sha256.Sum256([]byte{'c', 'u', 't', 'o', 'v', 'e', 'r', byte(i)})
			t[i] = binary.BigEndian.Uint64(sum[:8])
		}
		return t
	}()
	avgBits = bits.Len(AvgChunkSize) - 1
	// maskSmall (harder to match) is used below the average size, maskLarge
	// (easier) above it: this normalizes chunk sizes around the average. The
	// high bits are used because with a left-shifting gear hash they depend
	// on the most bytes.
	maskSmall = ^uint64(0) << (64 - (avgBits + 2))
	maskLarge = ^uint64(0) << (64 - (avgBits - 2))
)

// cutPoint returns the length of the first chunk of data.
func cutPoint(data []byte) int {
	n := len(data)
	if n <= MinChunkSize {
		return n
	}
	if n > MaxChunkSize {
		n = MaxChunkSize
	}
	normal := AvgChunkSize
	if n < normal {
		normal = n
	}
	var fp uint64
	i := MinChunkSize
	for ; i < normal; i++ {
		fp = (fp << 1) + gear[data[i]]
		if fp&maskSmall == 0 {
			return i + 1
		}
	}
	for ; i < n; i++ {
		fp = (fp << 1) + gear[data[i]]
		if fp&maskLarge == 0 {
			return i + 1
		}
	}
	return n
}

// Chunker splits a stream into content-defined chunks. It holds at most
// 2×MaxChunkSize bytes, whatever the stream's size.
type Chunker struct {
	r     io.Reader
	buf   []byte
	start int // first unreturned byte in buf
	end   int // end of valid data in buf
	eof   bool
}

// NewChunker returns a chunker reading r.
func NewChunker(r io.Reader) *Chunker {
	return &Chunker{r: r, buf: make([]byte, 2*MaxChunkSize)}
}

// Next returns the next chunk, or io.EOF after the last one. The returned
// slice is valid only until the next call: copy it to keep it.
func (c *Chunker) Next() ([]byte, error) {
	if c.end-c.start < MaxChunkSize && !c.eof {
		if err := c.fill(); err != nil {
			return nil, err
		}
	}
	if c.start == c.end {
		return nil, io.EOF
	}
	n := cutPoint(c.buf[c.start:c.end])
	chunk := c.buf[c.start : c.start+n]
	c.start += n
	return chunk, nil
}

func (c *Chunker) fill() error {
	copy(c.buf, c.buf[c.start:c.end])
	c.end -= c.start
	c.start = 0
	for c.end < len(c.buf) && !c.eof {
		n, err := c.r.Read(c.buf[c.end:])
		c.end += n
		if errors.Is(err, io.EOF) {
			c.eof = true
		} else if err != nil {
			return err
		}
	}
	return nil
}
