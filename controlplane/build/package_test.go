package build

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/pkg/appspec"
	"github.com/cutover-dev/cutover/pkg/manifest"
)

// chunkMap keeps chunks in memory.
type chunkMap map[manifest.ChunkID][]byte

func (s chunkMap) PutChunks(cs []manifest.Chunk) error {
	for _, c := range cs {
		s[c.ID] = append([]byte(nil), c.Data...)
	}
	return nil
}

func TestPackage(t *testing.T) {
	src := t.TempDir()
	for name, body := range map[string]string{"mobile/app.js": "console.log(1)\n", "main.go": "package main\n"} {
		if err := os.MkdirAll(filepath.Join(src, filepath.Dir(name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sink := chunkMap{}
	m, err := manifest.Build(context.Background(), src, "shop", appspec.Spec{Name: "shop", Run: appspec.Run{Command: "x"}}, sink)
	if err != nil {
		t.Fatal(err)
	}
	chunk := func(id manifest.ChunkID) ([]byte, error) { return sink[id], nil }
	b := New(Config{ScratchDir: t.TempDir()})
	tests := []struct {
		name    string
		pkg     appspec.Package
		wantErr string
		want    string
	}{
		{name: "produces the file", pkg: appspec.Package{Command: "mkdir -p out && cat mobile/app.js > out/app.apk && echo packed", Output: "out/app.apk"}, want: "console.log(1)\n"},
		{name: "command fails", pkg: appspec.Package{Command: "echo nope; exit 3", Output: "out/app.apk"}, wantErr: "failed (exit status 3)"},
		{name: "no file", pkg: appspec.Package{Command: "true", Output: "out/app.apk"}, wantErr: "produced no file out/app.apk"},
		{name: "timeout", pkg: appspec.Package{Command: "sleep 30", Output: "a.apk", Timeout: 200 * time.Millisecond}, wantErr: "did not finish within 200ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dest := filepath.Join(t.TempDir(), "packages", "d-1", "app.apk")
			res, err := b.Package(context.Background(), m, chunk, &tt.pkg, dest)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if _, err := os.Stat(dest); err == nil {
					t.Errorf("a failed package step left %s", dest)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, _ := os.ReadFile(dest)
			if string(got) != tt.want || res.SizeBytes != int64(len(tt.want)) || !strings.Contains(res.Log, "packed") {
				t.Errorf("package %q, result %+v", got, res)
			}
		})
	}
	if entries, _ := os.ReadDir(b.cfg.ScratchDir); len(entries) != 0 {
		t.Errorf("scratch directories left: %v", entries)
	}
}
