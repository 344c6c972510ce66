package chunkwire

import (
	"bytes"
	"crypto/sha256"
	"testing"

	"google.golang.org/protobuf/proto"

	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

func TestFrameIsAFetchChunksResponse(t *testing.T) {
	tests := []struct {
		name   string
		chunks []Chunk
	}{
		{"none", nil},
		{"one", []Chunk{{ID: sha256.Sum256([]byte("a")), Data: []byte("a")}}},
		{"compressed and empty", []Chunk{
			{ID: sha256.Sum256([]byte("b")), Data: bytes.Repeat([]byte("b"), 300<<10), Compressed: true},
			{ID: sha256.Sum256(nil)},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := NewFrame(tt.chunks)
			wire, err := Codec{}.Marshal(f)
			if err != nil {
				t.Fatal(err)
			}
			b := wire.Materialize()
			if len(b) != f.Size() {
				t.Errorf("Size = %d, encoded %d bytes", f.Size(), len(b))
			}
			// Any proto decoder reads it.
			var resp cutoverv1.FetchChunksResponse
			if err := proto.Unmarshal(b, &resp); err != nil {
				t.Fatal(err)
			}
			if len(resp.GetChunks()) != len(tt.chunks) {
				t.Fatalf("%d chunks, want %d", len(resp.GetChunks()), len(tt.chunks))
			}
			for i, c := range resp.GetChunks() {
				w := tt.chunks[i]
				if !bytes.Equal(c.GetId(), w.ID[:]) || !bytes.Equal(c.GetData(), w.Data) || c.GetCompressed() != w.Compressed {
					t.Errorf("chunk %d differs", i)
				}
			}
			// And Decoded reads what the stock codec writes.
			stock, err := proto.Marshal(&resp)
			if err != nil {
				t.Fatal(err)
			}
			var d Decoded
			if err := d.Decode(stock); err != nil {
				t.Fatal(err)
			}
			if len(d.Chunks) != len(tt.chunks) || d.WireBytes != len(stock) {
				t.Fatalf("decoded %d chunks of %d bytes", len(d.Chunks), d.WireBytes)
			}
			for i, c := range d.Chunks {
				w := tt.chunks[i]
				if c.ID != w.ID || !bytes.Equal(c.Data, w.Data) || c.Compressed != w.Compressed {
					t.Errorf("decoded chunk %d differs", i)
				}
			}
		})
	}
}

func TestDecodeRefusesBadInput(t *testing.T) {
	shortID, _ := proto.Marshal(&cutoverv1.FetchChunksResponse{Chunks: []*cutoverv1.Chunk{{Id: []byte("short"), Data: []byte("x")}}})
	noID, _ := proto.Marshal(&cutoverv1.FetchChunksResponse{Chunks: []*cutoverv1.Chunk{{Data: []byte("x")}}})
	good, _ := proto.Marshal(&cutoverv1.FetchChunksResponse{Chunks: []*cutoverv1.Chunk{{Id: make([]byte, 32), Data: []byte("xyz")}}})
	for name, b := range map[string][]byte{
		"short id":  shortID,
		"no id":     noID,
		"truncated": good[:len(good)-1],
	} {
		t.Run(name, func(t *testing.T) {
			var d Decoded
			if err := d.Decode(b); err == nil {
				t.Errorf("Decode accepted %x", b)
			}
		})
	}
}

func TestCodecDelegatesOtherMessages(t *testing.T) {
	in := &cutoverv1.GetManifestRequest{ReleaseId: "abc"}
	wire, err := Codec{}.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out cutoverv1.GetManifestRequest
	if err := (Codec{}).Unmarshal(wire, &out); err != nil {
		t.Fatal(err)
	}
	if out.GetReleaseId() != "abc" || (Codec{}).Name() != "proto" {
		t.Errorf("got %q, name %q", out.GetReleaseId(), Codec{}.Name())
	}
}
