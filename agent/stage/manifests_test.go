package stage

import (
	"errors"
	"fmt"
	"testing"

	"github.com/cutover-dev/cutover/pkg/errkind"
	"github.com/cutover-dev/cutover/pkg/manifest"
)

func encodedManifest(t *testing.T, app string) []byte {
	t.Helper()
	m := &manifest.Manifest{Application: app, Files: []manifest.File{
		{Path: "f", Mode: 0o644, Size: 1, Chunks: []manifest.ChunkRef{{ID: manifest.HashChunk([]byte("x")), Size: 1}}}}}
	return m.Encode()
}

func TestManifestsDecodeOncePerContent(t *testing.T) {
	var c manifests
	a, b := encodedManifest(t, "a"), encodedManifest(t, "b")
	m1, err := c.decode(a)
	if err != nil {
		t.Fatal(err)
	}
	m2, err := c.decode(append([]byte(nil), a...)) // same content, other bytes
	if err != nil {
		t.Fatal(err)
	}
	if m1 != m2 {
		t.Fatal("the same content was decoded twice")
	}
	m3, err := c.decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if m3 == m1 || m3.Application != "b" {
		t.Fatalf("other content: got %q (shared: %v)", m3.Application, m3 == m1)
	}
	if _, err := c.decode([]byte(`{"application":`)); !errors.Is(err, errkind.InvalidArgument) {
		t.Fatalf("bad manifest: err = %v, want InvalidArgument", err)
	}
	if len(c.byID) != 2 {
		t.Fatalf("%d manifests kept, want 2 (a bad one is not kept)", len(c.byID))
	}
}

func TestManifestsBounded(t *testing.T) {
	var c manifests
	first := encodedManifest(t, "app0")
	m0, err := c.decode(first)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= maxManifests; i++ {
		if _, err := c.decode(encodedManifest(t, fmt.Sprintf("app%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	if len(c.byID) != maxManifests || len(c.order) != maxManifests {
		t.Fatalf("%d manifests kept (order %d), want %d", len(c.byID), len(c.order), maxManifests)
	}
	again, err := c.decode(first)
	if err != nil {
		t.Fatal(err)
	}
	if again == m0 {
		t.Fatal("the oldest manifest was not evicted")
	}
}

func TestManifestsNilDecodes(t *testing.T) {
	var c *manifests
	m, err := c.decode(encodedManifest(t, "a"))
	if err != nil || m.Application != "a" {
		t.Fatalf("nil cache: %v, %v", m, err)
	}
}
