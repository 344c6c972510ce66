package stage

import (
	"errors"
	"io"
	"os"

	"github.com/cutover-dev/cutover/pkg/manifest"
)

// maxOpenFiles bounds the files a reader of chunks (ServeHeld, copyLocal)
// keeps open through readAt.
const maxOpenFiles = 64

// readIntact reads the chunk at l, through the open files (opening l's if
// needed), and says whether it hashes to id.
func readIntact(files map[string]*os.File, l location, id manifest.ChunkID) ([]byte, bool) {
	data, ok := readChunk(files, l)
	return data, ok && manifest.HashChunk(data) == id
}

// readChunk reads the chunk at l into a new buffer, through the open
// files (opening l's if needed), and says whether it could.
func readChunk(files map[string]*os.File, l location) ([]byte, bool) {
	if l.size <= 0 || l.size > manifest.MaxChunkSize {
		return nil, false
	}
	data := make([]byte, l.size)
	return data, readAt(files, l, data)
}

// readAt fills dst with the bytes at l.off in l.path, through the open
// files (opening l.path if needed, after closing them all if there are
// maxOpenFiles already), and says whether it could: the file opens and
// holds len(dst) bytes there.
func readAt(files map[string]*os.File, l location, dst []byte) bool {
	in, ok := files[l.path]
	if !ok {
		if len(files) >= maxOpenFiles {
			for p, f := range files {
				_ = f.Close()
				delete(files, p)
			}
		}
		var err error
		if in, err = os.Open(l.path); err != nil {
			return false
		}
		files[l.path] = in
	}
	n, err := in.ReadAt(dst, l.off)
	return n == len(dst) && (err == nil || errors.Is(err, io.EOF))
}
