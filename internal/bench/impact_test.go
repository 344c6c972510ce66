package bench

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/pkg/poll"
)

func TestPercentile(t *testing.T) {
	lat := []time.Duration{5, 1, 4, 2, 3, 6, 7, 8, 9, 10}
	for _, tc := range []struct {
		p    float64
		want time.Duration
	}{{50, 5}, {99, 10}, {10, 1}, {100, 10}} {
		if got := Percentile(lat, tc.p); got != tc.want {
			t.Errorf("Percentile(%v) = %v, want %v", tc.p, got, tc.want)
		}
	}
	if Percentile(nil, 99) != 0 {
		t.Error("Percentile of nothing is not 0")
	}
}

// TestLoadRecordsLatencies runs the latency figure's server and clients
// until they recorded some requests.
func TestLoadRecordsLatencies(t *testing.T) {
	start := time.Now()
	l, err := StartLoad(4, 200)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	err = poll.Until(context.Background(), 10*time.Second, func() error {
		if n := len(l.Between(start, time.Now())); n < 20 {
			return errors.New("fewer than 20 requests yet")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	lat := l.Between(start, time.Now())
	if p50, p99 := Percentile(lat, 50), Percentile(lat, 99); p50 <= 0 || p99 < p50 || p99 > 5*time.Second {
		t.Errorf("p50 %v, p99 %v over %d requests", p50, p99, len(lat))
	}
}

// TestRsyncFigureParts generates a small release, copies it to two
// targets with rsync --fsync, changes 1% of its files (one) and copies
// again: the targets match the source.
func TestRsyncFigureParts(t *testing.T) {
	if _, err := exec.LookPath("rsync"); err != nil {
		t.Skip("rsync is not installed")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := Generate(src, 3<<20, 1); err != nil {
		t.Fatal(err)
	}
	targets := []string{filepath.Join(dir, "rsync", "t1"), filepath.Join(dir, "rsync", "t2")}
	if _, _, err := rsyncTo(context.Background(), src, targets); err != nil {
		t.Fatal(err)
	}
	files, _ := dataFiles(src)
	before := map[string][]byte{}
	for _, f := range files {
		before[f], _ = os.ReadFile(f)
	}
	n, err := changeFiles(src, 0.01, 1)
	if err != nil || n != 1 {
		t.Fatalf("changeFiles = %d, %v; want 1 file", n, err)
	}
	changed := 0
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if string(b) != string(before[f]) {
			changed++
		}
	}
	if changed != 1 {
		t.Errorf("%d files changed, want 1", changed)
	}
	if _, _, err := rsyncTo(context.Background(), src, targets); err != nil {
		t.Fatal(err)
	}
	for _, tg := range targets {
		for _, f := range files {
			want, _ := os.ReadFile(f)
			got, err := os.ReadFile(filepath.Join(tg, "data", filepath.Base(f)))
			if err != nil || string(got) != string(want) {
				t.Errorf("%s differs from the source after rsync (%v)", filepath.Join(tg, "data", filepath.Base(f)), err)
			}
		}
	}
}
