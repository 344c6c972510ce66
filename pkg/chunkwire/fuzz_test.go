package chunkwire

import (
	"bytes"
	"crypto/sha256"
	"testing"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// FuzzDecode feeds Decode arbitrary FetchChunksResponse bytes, as an agent
// receives them: it never panics; what it accepts, protobuf's own decoder
// accepts and reads the same (ids, data, compression); through Codec, in
// pieces, it reads the same; and NewFrame of the chunks decoded encodes
// them back to chunks equal to them.
func FuzzDecode(f *testing.F) {
	for _, chunks := range [][]Chunk{
		nil,
		{{ID: sha256.Sum256([]byte("a")), Data: []byte("a")}},
		{{ID: sha256.Sum256([]byte("b")), Data: bytes.Repeat([]byte("b"), 1000), Compressed: true}, {ID: sha256.Sum256(nil)}},
	} {
		f.Add(NewFrame(chunks).bufs.Materialize(), 1)
	}
	// Unknown fields, a repeated id, a chunk without id, a short id, a group.
	var b []byte
	b = protowire.AppendTag(b, 7, protowire.VarintType)
	b = protowire.AppendVarint(b, 42)
	inner := protowire.AppendTag(nil, fieldID, protowire.BytesType)
	inner = protowire.AppendBytes(inner, make([]byte, IDSize))
	inner = protowire.AppendTag(inner, fieldID, protowire.BytesType)
	inner = protowire.AppendBytes(inner, bytes.Repeat([]byte{1}, IDSize))
	inner = protowire.AppendTag(inner, 9, protowire.StartGroupType)
	inner = protowire.AppendTag(inner, 9, protowire.EndGroupType)
	b = protowire.AppendTag(b, fieldChunks, protowire.BytesType)
	b = protowire.AppendBytes(b, inner)
	f.Add(b, 3)
	f.Add(protowire.AppendBytes(protowire.AppendTag(nil, fieldChunks, protowire.BytesType), protowire.AppendVarint(protowire.AppendTag(nil, fieldCompressed, protowire.VarintType), 1)), 2)
	f.Add(protowire.AppendBytes(protowire.AppendTag(nil, fieldChunks, protowire.BytesType), protowire.AppendBytes(protowire.AppendTag(nil, fieldID, protowire.BytesType), []byte("short"))), 0)
	f.Add([]byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f}, 1)

	f.Fuzz(func(t *testing.T, b []byte, pieces int) {
		var d Decoded
		if err := d.Decode(b); err != nil {
			return
		}
		if d.WireBytes != len(b) {
			t.Fatalf("WireBytes = %d for %d bytes", d.WireBytes, len(b))
		}

		var resp cutoverv1.FetchChunksResponse
		if err := proto.Unmarshal(b, &resp); err != nil {
			t.Fatalf("Decode accepts %x, which proto.Unmarshal refuses: %v", b, err)
		}
		if len(resp.GetChunks()) != len(d.Chunks) {
			t.Fatalf("Decode(%x): %d chunks, proto.Unmarshal %d", b, len(d.Chunks), len(resp.GetChunks()))
		}
		for i, c := range resp.GetChunks() {
			got := d.Chunks[i]
			if !bytes.Equal(c.GetId(), got.ID[:]) || !bytes.Equal(c.GetData(), got.Data) || c.GetCompressed() != got.Compressed {
				t.Fatalf("Decode(%x): chunk %d is %x/%x/%v, proto.Unmarshal reads %x/%x/%v", b, i,
					got.ID, got.Data, got.Compressed, c.GetId(), c.GetData(), c.GetCompressed())
			}
		}

		// Through the codec, received in pieces.
		var bufs mem.BufferSlice
		n := int(uint(pieces)%4) + 1
		for i := range n {
			bufs = append(bufs, mem.SliceBuffer(b[i*len(b)/n:(i+1)*len(b)/n]))
		}
		var viaCodec Decoded
		if err := (Codec{}).Unmarshal(bufs, &viaCodec); err != nil {
			t.Fatalf("Codec.Unmarshal of %x in %d pieces: %v", b, n, err)
		}
		defer viaCodec.Free()
		if !sameChunks(viaCodec.Chunks, d.Chunks) {
			t.Fatalf("Codec.Unmarshal of %x in %d pieces reads other chunks", b, n)
		}

		// What is decoded encodes back to the same chunks.
		frame := NewFrame(d.Chunks)
		wire := frame.bufs.Materialize()
		if len(wire) != frame.Size() {
			t.Fatalf("Frame.Size = %d, encoded %d bytes", frame.Size(), len(wire))
		}
		var again Decoded
		if err := again.Decode(wire); err != nil || !sameChunks(again.Chunks, d.Chunks) {
			t.Fatalf("chunks of %x, encoded again as %x, decode to other chunks (%v)", b, wire, err)
		}
	})
}

func sameChunks(a, b []Chunk) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].ID != b[i].ID || !bytes.Equal(a[i].Data, b[i].Data) || a[i].Compressed != b[i].Compressed {
			return false
		}
	}
	return true
}
