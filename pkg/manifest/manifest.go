// Package manifest describes a release: its files, each split into
// content-addressed chunks, and the app spec it runs with. A manifest's
// canonical encoding is hashed to give the release id, so the same content
// always has the same id and a received manifest can be checked against the
// id that named it.
package manifest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/cutover-dev/cutover/pkg/appspec"
	"github.com/cutover-dev/cutover/pkg/errkind"
)

// The limits of a release (docs/limits.md), enforced by the controller's
// build before anything is stored: larger releases are refused with
// errkind.ResourceExhausted.
const (
	// MaxFiles bounds the entries of a release: regular files, directories
	// and symlinks.
	MaxFiles = 100_000
	// MaxReleaseBytes bounds the total size of a release's regular files.
	MaxReleaseBytes int64 = 8 << 30
	// MaxEncodedBytes bounds a manifest's canonical encoding, which an agent
	// receives in one message (GetManifest).
	MaxEncodedBytes = 32 << 20
)

// ChunkID is the SHA-256 of a chunk's content.
type ChunkID [32]byte

// HashChunk returns the id of data.
func HashChunk(data []byte) ChunkID { return sha256.Sum256(data) }

// String returns the id in hex.
func (id ChunkID) String() string { return hex.EncodeToString(id[:]) }

// MarshalText encodes the id in hex.
func (id ChunkID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText decodes a hex id.
func (id *ChunkID) UnmarshalText(b []byte) error {
	parsed, err := ParseChunkID(string(b))
	*id = parsed
	return err
}

// ParseChunkID decodes a hex id. Errors are errkind.InvalidArgument.
func ParseChunkID(s string) (ChunkID, error) {
	var id ChunkID
	if len(s) != 2*len(id) {
		return id, fmt.Errorf("chunk id %q: want %d hex digits: %w", s, 2*len(id), errkind.InvalidArgument)
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("chunk id %q: %v: %w", s, err, errkind.InvalidArgument)
	}
	return id, nil
}

// Chunk is a piece of content with its id.
type Chunk struct {
	ID   ChunkID
	Data []byte
}

// ChunkRef is a chunk of a file, in file order.
type ChunkRef struct {
	ID   ChunkID `json:"id"`
	Size int64   `json:"size"`
}

// File is one entry of a release: a regular file, a directory or a symlink.
type File struct {
	// Path is relative, slash-separated and clean; never "." or outside.
	Path string `json:"path"`
	// Mode holds the permission bits and fs.ModeDir or fs.ModeSymlink.
	Mode fs.FileMode `json:"mode"`
	// Size is the size of a regular file.
	Size int64 `json:"size,omitempty"`
	// Chunks are a regular file's content, in order.
	Chunks []ChunkRef `json:"chunks,omitempty"`
	// Link is a symlink's target: relative, resolving inside the release.
	Link string `json:"link,omitempty"`
}

// IsRegular reports whether f is a regular file.
func (f *File) IsRegular() bool { return f.Mode.Type() == 0 }

// Manifest is the description of a release.
type Manifest struct {
	// Application is the name of the application.
	Application string `json:"application"`
	// Spec is the app spec the release runs with.
	Spec appspec.Spec `json:"spec"`
	// Files are sorted by Path.
	Files []File `json:"files"`
}

// Encode returns the canonical encoding of m: JSON with files sorted by path.
func (m *Manifest) Encode() []byte {
	c := *m
	c.Files = append([]File(nil), m.Files...)
	sort.Slice(c.Files, func(i, j int) bool { return c.Files[i].Path < c.Files[j].Path })
	b, err := json.Marshal(&c)
	if err != nil {
		panic(fmt.Sprintf("manifest: encode: %v", err)) // only plain types: cannot happen
	}
	return b
}

// ReleaseID returns the release id of a canonical manifest encoding: the hex
// SHA-256 of those bytes.
func ReleaseID(encoded []byte) string {
	sum := sha256.Sum256(encoded)
	return hex.EncodeToString(sum[:])
}

// ID returns m's release id.
func (m *Manifest) ID() string { return ReleaseID(m.Encode()) }

// Decode parses and validates a canonical manifest (decode.go reads the
// shape Encode writes without encoding/json). Errors are
// errkind.InvalidArgument.
func Decode(b []byte) (*Manifest, error) {
	m, ok := decodeFast(b)
	if !ok {
		m = &Manifest{}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(m); err != nil {
			return nil, fmt.Errorf("decode manifest: %v: %w", err, errkind.InvalidArgument)
		}
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return m, nil
}

// Validate checks that every path is clean and relative, that every symlink
// resolves inside the release (followed through the release's other
// symlinks), that nothing lives under a symlink, that sizes add up, and that
// no path repeats.
// Errors are errkind.InvalidArgument.
func (m *Manifest) Validate() error {
	seen := make(map[string]bool, len(m.Files))
	for i := range m.Files {
		f := &m.Files[i]
		if err := ValidPath(f.Path); err != nil {
			return err
		}
		if seen[f.Path] {
			return fmt.Errorf("manifest lists %q twice: %w", f.Path, errkind.InvalidArgument)
		}
		seen[f.Path] = true
		switch f.Mode.Type() {
		case 0:
			var sum int64
			for _, c := range f.Chunks {
				if c.Size <= 0 || c.Size > MaxChunkSize {
					return fmt.Errorf("manifest: %q has a chunk of %d bytes: %w", f.Path, c.Size, errkind.InvalidArgument)
				}
				sum += c.Size
			}
			if sum != f.Size {
				return fmt.Errorf("manifest: %q: chunks add up to %d bytes, not %d: %w", f.Path, sum, f.Size, errkind.InvalidArgument)
			}
		case fs.ModeDir:
		case fs.ModeSymlink:
			if err := ValidLink(f.Path, f.Link); err != nil {
				return err
			}
		default:
			return fmt.Errorf("manifest: %q has unsupported type %v: %w", f.Path, f.Mode.Type(), errkind.InvalidArgument)
		}
	}
	return m.checkLinks()
}

// ValidPath checks that p is a clean, relative, slash-separated path that
// stays inside the release. Errors are errkind.InvalidArgument.
func ValidPath(p string) error {
	if p == "" || p == "." || path.IsAbs(p) || path.Clean(p) != p || p == ".." || strings.HasPrefix(p, "../") || strings.Contains(p, `\`) || strings.ContainsRune(p, 0) {
		return fmt.Errorf("path %q is not a clean relative path inside the release: %w", p, errkind.InvalidArgument)
	}
	return nil
}

// ValidLink checks that a symlink at p with target link resolves inside the
// release. Errors are errkind.InvalidArgument.
func ValidLink(p, link string) error {
	if link == "" || path.IsAbs(link) || strings.ContainsRune(link, 0) {
		return fmt.Errorf("symlink %q -> %q must have a relative target inside the release: %w", p, link, errkind.InvalidArgument)
	}
	resolved := path.Join(path.Dir(p), link)
	if resolved == ".." || strings.HasPrefix(resolved, "../") {
		return fmt.Errorf("symlink %q -> %q leads outside the release: %w", p, link, errkind.InvalidArgument)
	}
	return nil
}

// Size returns the total size of the regular files.
func (m *Manifest) Size() int64 {
	var n int64
	for i := range m.Files {
		n += m.Files[i].Size
	}
	return n
}

// ChunkIDs returns the distinct chunk ids of the release, in first-use order.
func (m *Manifest) ChunkIDs() []ChunkID {
	seen := make(map[ChunkID]bool)
	var ids []ChunkID
	for i := range m.Files {
		for _, c := range m.Files[i].Chunks {
			if !seen[c.ID] {
				seen[c.ID] = true
				ids = append(ids, c.ID)
			}
		}
	}
	return ids
}
