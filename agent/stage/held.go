package stage

import (
	"errors"
	"io"
	"os"

	"github.com/cutover-dev/cutover/pkg/manifest"
)

// maxOpenHeld bounds the files ServeHeld keeps open.
const maxOpenHeld = 64

// readIntact reads the chunk at l, through the open files (opening l's if
// needed), and says whether it hashes to id.
func readIntact(files map[string]*os.File, l location, id manifest.ChunkID) ([]byte, bool) {
	data, ok := readAt(files, l)
	return data, ok && manifest.HashChunk(data) == id
}

// readAt reads the chunk at l, through the open files (opening l's if
// needed), and says whether it could.
func readAt(files map[string]*os.File, l location) ([]byte, bool) {
	in, ok := files[l.path]
	if !ok {
		if len(files) >= maxOpenHeld {
			for p, f := range files {
				_ = f.Close()
				delete(files, p)
			}
		}
		var err error
		if in, err = os.Open(l.path); err != nil {
			return nil, false
		}
		files[l.path] = in
	}
	if l.size <= 0 || l.size > manifest.MaxChunkSize {
		return nil, false
	}
	data := make([]byte, l.size)
	if n, err := in.ReadAt(data, l.off); n != len(data) || (err != nil && !errors.Is(err, io.EOF)) {
		return nil, false
	}
	return data, true
}
