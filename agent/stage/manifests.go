package stage

import (
	"sync"

	"github.com/cutover-dev/cutover/pkg/manifest"
)

// A stage reads the manifests of the releases this agent holds several
// times (the one it stages, the clone sources, the index of the chunks on
// disk), and a manifest of a 1 GiB release is about 1.4 MB of JSON that
// takes some 20 ms of CPU to decode. With ten agents on one host, or an
// agent beside the app it serves, that was most of a v2's prepare, in
// proportion to the release rather than to what changed. So each
// manifest is decoded once and kept.
//
// The cache is keyed by the SHA-256 of the canonical bytes (the release
// id), computed on every lookup (about 1 ms for 1.4 MB): whatever record
// the bytes come from, the manifest returned is the decoding of exactly
// those bytes. Decoded manifests are shared: nothing in this package
// modifies one.

// maxManifests bounds the decoded manifests kept: more than the releases
// an agent keeps of an application (drop.go), for a few applications.
const maxManifests = 16

// manifests holds decoded manifests. The zero value is ready; a nil one
// decodes every time.
type manifests struct {
	mu    sync.Mutex
	byID  map[string]*manifest.Manifest
	order []string // insertion order, oldest first
}

// decode returns the manifest whose canonical encoding is b (as
// manifest.Decode; errors are errkind.InvalidArgument). The result is
// shared: the caller must not modify it.
func (c *manifests) decode(b []byte) (*manifest.Manifest, error) {
	if c == nil {
		return manifest.Decode(b)
	}
	id := manifest.ReleaseID(b)
	c.mu.Lock()
	m, ok := c.byID[id]
	c.mu.Unlock()
	if ok {
		return m, nil
	}
	m, err := manifest.Decode(b)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.byID[id]; !ok {
		if c.byID == nil {
			c.byID = map[string]*manifest.Manifest{}
		}
		if len(c.order) >= maxManifests {
			delete(c.byID, c.order[0])
			c.order = c.order[1:]
		}
		c.byID[id] = m
		c.order = append(c.order, id)
	}
	return m, nil
}
