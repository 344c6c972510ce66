package build

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/cutover-dev/cutover/pkg/errkind"
)

// TestReleaseLimits: a build output with more files or bytes than allowed
// is refused with ResourceExhausted before any chunk is made, and the
// scratch directory is removed; at the limit it builds.
func TestReleaseLimits(t *testing.T) {
	spec := "name: web\nbuild: {command: 'mkdir out && for i in 1 2 3; do printf 1234 > out/f$i; done', output: out}\nrun: {command: ./web}\n"
	tests := []struct {
		name     string
		maxFiles int
		maxBytes int64
		words    []string
	}{
		{"at the limits", 3, 12, nil},
		{"too many files", 2, 0, []string{"more than 2 files", "docs/limits.md", "nothing was stored"}},
		{"too many bytes", 0, 11, []string{"more than 11 bytes", "docs/limits.md", "nothing was stored"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			scratch := t.TempDir()
			sink := &memSink{}
			b := New(Config{ScratchDir: scratch, Sink: sink, MaxFiles: tt.maxFiles, MaxBytes: tt.maxBytes})
			r, err := b.Build(context.Background(), "web", source(t, spec, map[string]string{}))
			if tt.words == nil {
				if err != nil {
					t.Fatal(err)
				}
				if len(r.Manifest.Files) != 3 || r.Manifest.Size() != 12 {
					t.Errorf("manifest: %d files, %d bytes", len(r.Manifest.Files), r.Manifest.Size())
				}
				r.Cleanup()
				return
			}
			if !errors.Is(err, errkind.ResourceExhausted) {
				t.Fatalf("Build = %v, want ResourceExhausted", err)
			}
			for _, w := range tt.words {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q does not say %q", err, w)
				}
			}
			if sink.n != 0 {
				t.Errorf("%d chunks were stored", sink.n)
			}
			if left, _ := os.ReadDir(scratch); len(left) != 0 {
				t.Errorf("the scratch directory holds %v", left)
			}
		})
	}
}

// TestReleaseLimitsOnlyLower: the builder's limits may lower those of
// pkg/manifest, never raise them.
func TestReleaseLimitsOnlyLower(t *testing.T) {
	b := New(Config{MaxFiles: 1 << 30, MaxBytes: 1 << 62})
	if b.cfg.MaxFiles != 100_000 || b.cfg.MaxBytes != 8<<30 {
		t.Errorf("limits %d files, %d bytes", b.cfg.MaxFiles, b.cfg.MaxBytes)
	}
}
