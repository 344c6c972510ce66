// Package chunkwire carries FetchChunks responses without copying chunk
// data through the protobuf codec. The controller encodes a response by hand
// as a list of buffers (small headers, and the chunk data itself, shared and
// never copied) in a Frame; the agent decodes a response into chunks that
// alias one received buffer. The bytes on the wire are exactly those of
// cutover.v1.FetchChunksResponse, so any gRPC client can still read them.
//
// Codec is a gRPC encoding.CodecV2 named "proto" that handles Frame and
// Decoded and hands every other message to gRPC's own proto codec, so that
// installing it on the server (grpc.ForceServerCodecV2) or on one call
// (grpc.ForceCodecV2) changes nothing for the other services, reflection
// and grpcurl.
package chunkwire

import (
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/zstd"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/proto" // registers the "proto" codec Codec delegates to
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
)

// IDSize is the size of a chunk id (SHA-256).
const IDSize = 32

// Chunk is one chunk of a response.
type Chunk struct {
	// ID is the SHA-256 of the uncompressed data.
	ID [IDSize]byte
	// Data is the content, zstd-compressed if Compressed. In a Frame it is
	// shared: nobody may modify it.
	Data []byte
	// Compressed says Data is zstd-compressed.
	Compressed bool
}

// Field numbers of cutover.v1.FetchChunksResponse and cutover.v1.Chunk.
const (
	fieldChunks     = 1
	fieldID         = 1
	fieldData       = 2
	fieldCompressed = 3
)

// Frame is a FetchChunksResponse ready to send: send it with
// grpc.ServerStream.SendMsg on a server that uses Codec.
type Frame struct {
	bufs mem.BufferSlice
	size int
}

// NewFrame encodes chunks. Their Data is referenced, not copied, until the
// frame is sent.
func NewFrame(chunks []Chunk) *Frame {
	f := &Frame{bufs: make(mem.BufferSlice, 0, 2*len(chunks))}
	for _, c := range chunks {
		var inner []byte
		inner = protowire.AppendTag(inner, fieldID, protowire.BytesType)
		inner = protowire.AppendBytes(inner, c.ID[:])
		if c.Compressed {
			inner = protowire.AppendTag(inner, fieldCompressed, protowire.VarintType)
			inner = protowire.AppendVarint(inner, 1)
		}
		inner = protowire.AppendTag(inner, fieldData, protowire.BytesType)
		inner = protowire.AppendVarint(inner, uint64(len(c.Data)))
		msgLen := len(inner) + len(c.Data)
		head := make([]byte, 0, len(inner)+2*protowire.SizeVarint(uint64(msgLen)))
		head = protowire.AppendTag(head, fieldChunks, protowire.BytesType)
		head = protowire.AppendVarint(head, uint64(msgLen))
		head = append(head, inner...)
		f.bufs = append(f.bufs, mem.SliceBuffer(head))
		if len(c.Data) > 0 {
			f.bufs = append(f.bufs, mem.SliceBuffer(c.Data))
		}
		f.size += len(head) + len(c.Data)
	}
	return f
}

// Size is the encoded size of the frame.
func (f *Frame) Size() int { return f.size }

// Decoded receives a FetchChunksResponse: pass it to RecvMsg on a call made
// with grpc.ForceCodecV2(Codec{}). Its chunks alias one buffer owned by it,
// taken from a pool: call Free once the chunks' data is no longer used.
type Decoded struct {
	Chunks []Chunk
	// WireBytes is the size of the encoded response.
	WireBytes int
	buf       mem.Buffer
}

// Free gives the buffer the chunks alias back to the pool; their data must
// not be used after. Free on a Decoded without a buffer does nothing.
func (d *Decoded) Free() {
	if d.buf != nil {
		d.buf.Free()
		d.buf = nil
	}
}

// recvBuffers holds the buffers responses are received into, so that a
// stream of responses does not allocate (and clear) a new one for each. A
// received buffer is overwritten whole, so it is handed out as it is.
var recvBuffers mem.BufferPool = &bufferPool{}

// minRecvBuffer is the least capacity of a pooled buffer: a batch of about
// 1 MiB and its framing.
const minRecvBuffer = 1<<20 + 64<<10

type bufferPool struct{ pool sync.Pool }

func (p *bufferPool) Get(n int) *[]byte {
	if b, ok := p.pool.Get().(*[]byte); ok && cap(*b) >= n {
		*b = (*b)[:n]
		return b
	}
	b := make([]byte, n, max(n, minRecvBuffer))
	return &b
}

func (p *bufferPool) Put(b *[]byte) { p.pool.Put(b) }

// Decode parses the wire bytes of a FetchChunksResponse into d; the chunks
// alias b.
func (d *Decoded) Decode(b []byte) error {
	d.Chunks, d.WireBytes = d.Chunks[:0], len(b)
	for len(b) > 0 {
		num, typ, n := consumeTag(b)
		if n < 0 {
			return fmt.Errorf("FetchChunksResponse: %w", protowire.ParseError(n))
		}
		b = b[n:]
		if num != fieldChunks || typ != protowire.BytesType {
			if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
				return fmt.Errorf("FetchChunksResponse: %w", protowire.ParseError(n))
			}
			b = b[n:]
			continue
		}
		msg, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return fmt.Errorf("FetchChunksResponse: %w", protowire.ParseError(n))
		}
		b = b[n:]
		c, err := decodeChunk(msg)
		if err != nil {
			return err
		}
		d.Chunks = append(d.Chunks, c)
	}
	return nil
}

func decodeChunk(b []byte) (Chunk, error) {
	var c Chunk
	idSeen := false
	for len(b) > 0 {
		num, typ, n := consumeTag(b)
		if n < 0 {
			return c, fmt.Errorf("Chunk: %w", protowire.ParseError(n))
		}
		b = b[n:]
		switch {
		case num == fieldID && typ == protowire.BytesType, num == fieldData && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return c, fmt.Errorf("Chunk: %w", protowire.ParseError(n))
			}
			b = b[n:]
			if num == fieldData {
				c.Data = v
				continue
			}
			if len(v) != IDSize {
				return c, fmt.Errorf("chunk id of %d bytes, want %d", len(v), IDSize)
			}
			copy(c.ID[:], v)
			idSeen = true
		case num == fieldCompressed && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return c, fmt.Errorf("Chunk: %w", protowire.ParseError(n))
			}
			b = b[n:]
			c.Compressed = v != 0
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return c, fmt.Errorf("Chunk: %w", protowire.ParseError(n))
			}
			b = b[n:]
		}
	}
	if !idSeen {
		return c, errors.New("chunk without an id")
	}
	return c, nil
}

// consumeTag is protowire.ConsumeTag that also refuses field numbers above
// protowire.MaxValidNumber, as protobuf's decoder does (ConsumeTag lets
// them through): what Decode accepts, any protobuf decoder accepts.
func consumeTag(b []byte) (protowire.Number, protowire.Type, int) {
	num, typ, n := protowire.ConsumeTag(b)
	if n >= 0 && num > protowire.MaxValidNumber {
		return 0, 0, -2 // protowire's code for an invalid field number, as ParseError reads it
	}
	return num, typ, n
}

// Codec is the gRPC codec that sends Frames and receives Decodeds as they
// are, and everything else with gRPC's proto codec.
type Codec struct{}

var _ encoding.CodecV2 = Codec{}

func protoCodec() encoding.CodecV2 { return encoding.GetCodecV2("proto") }

// Marshal returns a Frame's buffers, or the proto encoding of v.
func (Codec) Marshal(v any) (mem.BufferSlice, error) {
	if f, ok := v.(*Frame); ok {
		return f.bufs, nil
	}
	return protoCodec().Marshal(v)
}

// Unmarshal decodes into a Decoded (one copy of the received bytes into a
// pooled buffer, which its chunks then alias), or into a proto message.
func (Codec) Unmarshal(data mem.BufferSlice, v any) error {
	if d, ok := v.(*Decoded); ok {
		d.Free()
		d.buf = data.MaterializeToBuffer(recvBuffers)
		return d.Decode(d.buf.ReadOnlyData())
	}
	return protoCodec().Unmarshal(data, v)
}

// Name is "proto": the content type stays application/grpc+proto.
func (Codec) Name() string { return "proto" }

// Receive reads the responses of a FetchChunks stream made with
// grpc.ForceCodecV2(Codec{}) and calls fn with each, until the stream ends
// (nil), fails, or fn fails (that error). fn owns each response: it calls
// Free once the chunks' data is no longer used.
func Receive(stream grpc.ClientStream, fn func(*Decoded) error) error {
	for {
		resp := new(Decoded)
		err := stream.RecvMsg(resp)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := fn(resp); err != nil {
			return err
		}
	}
}

// Plain returns the chunk's content uncompressed: Data itself (aliasing
// the response's buffer), or Data decompressed by dec into new memory.
func (c Chunk) Plain(dec *zstd.Decoder) ([]byte, error) {
	if !c.Compressed {
		return c.Data, nil
	}
	return dec.DecodeAll(c.Data, nil)
}
