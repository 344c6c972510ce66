package bench

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
)

// AppName is the benchmark application's name.
const AppName = "bigapp"

// appSpec is its cutover.yaml: the source is the release as is, and the
// "app" only sleeps, so that activating it costs nothing.
const appSpec = `name: bigapp
run:
  command: exec sleep 2147483647
  stop_grace: 1s
`

// maxFileSize bounds one generated file: a release of many files, some big.
const maxFileSize = 64 << 20

// Generate writes the source of application AppName into dir: about size
// bytes of seeded random files and its app spec (no build; the "app" only
// sleeps). The same seed and size give the same bytes.
func Generate(dir string, size int64, seed uint64) error {
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "cutover.yaml"), []byte(appSpec), 0o644); err != nil {
		return err
	}
	rng := rand.New(rand.NewChaCha8(seedBytes(seed)))
	var left = size
	for i := 0; left > 0; i++ {
		n := min(left, int64(maxFileSize/4+rng.IntN(maxFileSize*3/4)))
		if i%8 == 7 {
			n = min(left, int64(1+rng.IntN(256<<10))) // some small files too
		}
		name := filepath.Join(dir, "data", fmt.Sprintf("file-%04d.bin", i))
		if err := writeRandom(name, n, rng); err != nil {
			return err
		}
		left -= n
	}
	return nil
}

func seedBytes(seed uint64) (b [32]byte) {
	for i := range 8 {
		b[i] = byte(seed >> (8 * i))
	}
	return b
}

func writeRandom(name string, n int64, rng *rand.Rand) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	if _, err := io.CopyN(w, randReader{rng}, n); err != nil {
		f.Close()
		return err
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// randReader reads from a seeded generator.
type randReader struct{ rng *rand.Rand }

func (r randReader) Read(p []byte) (int, error) {
	i := 0
	for ; i+8 <= len(p); i += 8 {
		v := r.rng.Uint64()
		for j := range 8 {
			p[i+j] = byte(v >> (8 * j))
		}
	}
	for ; i < len(p); i++ {
		p[i] = byte(r.rng.Uint32())
	}
	return len(p), nil
}

// dataFiles returns the generated files of dir, sorted.
func dataFiles(dir string) ([]string, error) {
	names, err := filepath.Glob(filepath.Join(dir, "data", "*.bin"))
	sort.Strings(names)
	return names, err
}

// mutate changes about fraction of the release's bytes in places spots of
// the big files: every other spot overwrites bytes in place, the others
// insert new bytes (which shifts everything after them in that file).
func mutate(dir string, size int64, fraction float64, places int, seed uint64) error {
	files, err := dataFiles(dir)
	if err != nil {
		return err
	}
	var big []string
	for _, f := range files {
		if info, err := os.Stat(f); err == nil && info.Size() >= maxFileSize/4 {
			big = append(big, f)
		}
	}
	if len(big) == 0 {
		return fmt.Errorf("no file of %s is big enough to change", dir)
	}
	rng := rand.New(rand.NewChaCha8(seedBytes(seed + 1)))
	per := int64(float64(size) * fraction / float64(places))
	for i := range places {
		name := big[i%len(big)]
		b, err := os.ReadFile(name)
		if err != nil {
			return err
		}
		at := rng.Int64N(int64(len(b)) - per)
		fresh := make([]byte, per)
		_, _ = randReader{rng}.Read(fresh)
		if i%2 == 0 {
			copy(b[at:], fresh)
		} else {
			b = append(b[:at], append(fresh, b[at:]...)...)
		}
		if err := os.WriteFile(name, b, 0o644); err != nil {
			return err
		}
	}
	return nil
}
