package manifest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"reflect"
	"testing"

	"github.com/cutover-dev/cutover/pkg/appspec"
)

// sampleManifest has every kind of entry, a path that is not ASCII, and
// enough chunks to be worth decoding fast.
func sampleManifest(files, chunks int) *Manifest {
	m := &Manifest{Application: "hello", Spec: appspec.Spec{Name: "hello", Run: appspec.Run{Command: "bin/hello"},
		Hooks: appspec.Hooks{Validate: []appspec.Hook{{Command: "t", Labels: map[string]string{"role": "web"}}}}},
		Files: []File{{Path: "bin", Mode: fs.ModeDir | 0o755}, {Path: "current", Mode: fs.ModeSymlink | 0o777, Link: "bin/hello"},
			{Path: "empty", Mode: 0o644}, {Path: "ünï/cödé", Mode: 0o600, Size: 1, Chunks: []ChunkRef{{ID: HashChunk([]byte("x")), Size: 1}}}}}
	n := 0
	for i := range files {
		f := File{Path: fmt.Sprintf("data/file-%04d.bin", i), Mode: 0o644}
		for range chunks {
			n++
			f.Chunks = append(f.Chunks, ChunkRef{ID: HashChunk([]byte(fmt.Sprint(n))), Size: 65536 + int64(n%1000)})
			f.Size += 65536 + int64(n%1000)
		}
		m.Files = append(m.Files, f)
	}
	return m
}

// slowDecode is Decode's encoding/json path.
func slowDecode(b []byte) (*Manifest, error) {
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return &m, dec.Decode(&m)
}

func TestDecodeFastReadsWhatEncodeWrites(t *testing.T) {
	enc := sampleManifest(3, 5).Encode()
	fast, ok := decodeFast(enc)
	if !ok {
		t.Fatalf("decodeFast refused Encode's output:\n%s", enc)
	}
	slow, err := slowDecode(enc)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fast, slow) {
		t.Errorf("decodeFast = %+v\nencoding/json = %+v", fast, slow)
	}
}

func TestDecodeFastLeavesOtherShapesToEncodingJSON(t *testing.T) {
	id := HashChunk([]byte("x")).String()
	for _, b := range []string{
		`{ "application":"a","spec":{},"files":[]}`,                              // white space
		`{"application":"a","spec":{},"files":[]}` + "\n",                        // trailing
		`{"application":"a\u0062","spec":{},"files":[]}`,                         // escape
		`{"spec":{},"application":"a","files":[]}`,                               // order
		`{"application":"a","spec":{},"files":null}`,                             // null
		`{"Application":"a","spec":{},"files":[]}`,                               // case
		`{"application":"a","spec":{},"files":[{"path":"b","mode":0420}]}`,       // leading zero
		`{"application":"a","spec":{},"files":[{"path":"b","mode":4294967296}]}`, // overflow
		`{"application":"a","spec":{},"files":[{"path":"b","mode":420,"size":-1}]}`,
		`{"application":"a","spec":{},"files":[{"path":"b","mode":420,"size":1,"chunks":[{"id":"` + id[:62] + `","size":1}]}]}`,
		`{"application":"a","spec":{"x":1},"files":[]}`, // unknown field
		"{\"application\":\"\xff\",\"spec\":{},\"files\":[]}",
	} {
		if _, ok := decodeFast([]byte(b)); ok {
			t.Errorf("decodeFast accepted %s", b)
		}
	}
}

// FuzzDecodeFast checks that whatever decodeFast accepts, encoding/json
// decodes to the same Manifest.
func FuzzDecodeFast(f *testing.F) {
	f.Add(sampleManifest(2, 3).Encode())
	f.Add([]byte(`{"application":"a","spec":{},"files":[{"path":"a","mode":420,"size":0,"chunks":[],"link":""}]}`))
	f.Add([]byte(`{"application":"a","spec":{"name":"}{\"]"},"files":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		fast, ok := decodeFast(b)
		if !ok {
			return
		}
		slow, err := slowDecode(b)
		if err != nil {
			t.Fatalf("decodeFast accepted %q, which encoding/json refuses: %v", b, err)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%q: decodeFast = %+v, encoding/json = %+v", b, fast, slow)
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	enc := sampleManifest(25, 655).Encode() // about a 1 GiB release
	b.SetBytes(int64(len(enc)))
	for b.Loop() {
		if _, err := Decode(enc); err != nil {
			b.Fatal(err)
		}
	}
}
