package manifest

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"math"
	"unicode/utf8"
)

// Every agent decodes the manifest of each release it stages, and the
// manifest of a 1 GiB release is about 1.4 MB of JSON, nearly all of it
// chunk ids and sizes: encoding/json took some 30 ms of CPU for it, per
// agent and per release, however little had changed (issue 12). So
// Decode first tries decodeFast, which reads the shape that Encode
// writes and nothing else, and falls back to encoding/json for anything
// it does not recognise. decodeFast is only a shortcut: whatever it
// accepts, encoding/json decodes to the same Manifest (FuzzDecodeFast).

// decodeFast decodes b if it has exactly the shape Encode gives it: no
// white space, the fields in Encode's order, strings without escapes,
// integers without signs, exponents or leading zeros. The app spec, small,
// goes through encoding/json. ok is false for anything else, and for
// anything encoding/json would refuse.
func decodeFast(b []byte) (m *Manifest, ok bool) {
	s := scanner{b: b}
	m = &Manifest{}
	if !s.lit(`{"application":`) {
		return nil, false
	}
	if m.Application, ok = s.str(); !ok || !s.lit(`,"spec":`) {
		return nil, false
	}
	spec, ok := s.object()
	if !ok || !decodeSpec(spec, m) || !s.lit(`,"files":[`) {
		return nil, false
	}
	m.Files = []File{}
	files := s.list(func() bool {
		f, ok := s.file()
		m.Files = append(m.Files, f)
		return ok
	})
	if !files || !s.lit(`}`) || s.i != len(b) {
		return nil, false
	}
	return m, true
}

// decodeSpec decodes the app spec's JSON into m.Spec as Decode does:
// unknown fields refused.
func decodeSpec(spec []byte, m *Manifest) bool {
	dec := json.NewDecoder(bytes.NewReader(spec))
	dec.DisallowUnknownFields()
	return dec.Decode(&m.Spec) == nil
}

// scanner reads b from i.
type scanner struct {
	b []byte
	i int
}

// lit consumes l if b continues with it.
func (s *scanner) lit(l string) bool {
	if len(s.b)-s.i < len(l) || string(s.b[s.i:s.i+len(l)]) != l {
		return false
	}
	s.i += len(l)
	return true
}

// str consumes a JSON string without escapes or control characters, of
// valid UTF-8: encoding/json decodes such a string to its bytes as they
// are.
func (s *scanner) str() (string, bool) {
	if !s.lit(`"`) {
		return "", false
	}
	start := s.i
	for ; s.i < len(s.b); s.i++ {
		switch c := s.b[s.i]; {
		case c == '"':
			v := s.b[start:s.i]
			s.i++
			return string(v), utf8.Valid(v)
		case c == '\\' || c < 0x20:
			return "", false
		}
	}
	return "", false
}

// uint consumes an unsigned integer of at most limit, in JSON's form (no
// leading zero).
func (s *scanner) uint(limit uint64) (uint64, bool) {
	start := s.i
	var v uint64
	for ; s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9'; s.i++ {
		d := uint64(s.b[s.i] - '0')
		if v > (limit-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	n := s.i - start
	return v, n > 0 && (n == 1 || s.b[start] != '0')
}

// list consumes the rest of a JSON array whose "[" is consumed, calling
// elem to consume each element, up to the closing "]".
func (s *scanner) list(elem func() bool) bool {
	for n := 0; !s.lit(`]`); n++ {
		if (n > 0 && !s.lit(`,`)) || !elem() {
			return false
		}
	}
	return true
}

// int64 consumes a non-negative int64.
func (s *scanner) int64() (int64, bool) {
	v, ok := s.uint(math.MaxInt64)
	return int64(v), ok
}

// object consumes a JSON object, without decoding it, and returns its
// bytes: braces and brackets counted outside strings, escapes skipped.
// Whether it is valid JSON is for its decoder to say.
func (s *scanner) object() ([]byte, bool) {
	start, depth, inString := s.i, 0, false
	if s.i >= len(s.b) || s.b[s.i] != '{' {
		return nil, false
	}
	for ; s.i < len(s.b); s.i++ {
		c := s.b[s.i]
		switch {
		case inString && c == '\\':
			s.i++
		case c == '"':
			inString = !inString
		case inString:
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			if depth--; depth == 0 {
				s.i++
				return s.b[start:s.i], true
			}
		}
	}
	return nil, false
}

// file consumes one entry of "files" as Encode writes it.
func (s *scanner) file() (File, bool) {
	var f File
	var ok bool
	if !s.lit(`{"path":`) {
		return f, false
	}
	if f.Path, ok = s.str(); !ok || !s.lit(`,"mode":`) {
		return f, false
	}
	mode, ok := s.uint(math.MaxUint32)
	if !ok {
		return f, false
	}
	f.Mode = fs.FileMode(mode)
	if s.lit(`,"size":`) {
		if f.Size, ok = s.int64(); !ok {
			return f, false
		}
	}
	if s.lit(`,"chunks":[`) {
		f.Chunks = []ChunkRef{}
		chunks := s.list(func() bool {
			c, ok := s.chunk()
			f.Chunks = append(f.Chunks, c)
			return ok
		})
		if !chunks {
			return f, false
		}
	}
	if s.lit(`,"link":`) {
		if f.Link, ok = s.str(); !ok {
			return f, false
		}
	}
	return f, s.lit(`}`)
}

// chunk consumes one {"id":"<hex>","size":N}.
func (s *scanner) chunk() (ChunkRef, bool) {
	var c ChunkRef
	const idLen = 2 * len(ChunkID{})
	if !s.lit(`{"id":"`) || len(s.b)-s.i < idLen {
		return c, false
	}
	if _, err := hex.Decode(c.ID[:], s.b[s.i:s.i+idLen]); err != nil {
		return c, false
	}
	s.i += idLen
	var ok bool
	if !s.lit(`","size":`) {
		return c, false
	}
	if c.Size, ok = s.int64(); !ok {
		return c, false
	}
	return c, s.lit(`}`)
}
