package build

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/pkg/errkind"
	"github.com/cutover-dev/cutover/pkg/manifest"
)

type memSink struct {
	mu sync.Mutex
	n  int
}

func (s *memSink) PutChunks(cs []manifest.Chunk) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n += len(cs)
	return nil
}

func source(t *testing.T, spec string, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	files["cutover.yaml"] = spec
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestBuild(t *testing.T) {
	tests := []struct {
		name     string
		app      string
		spec     string
		files    map[string]string
		wantKind error
		wantMsg  string
		check    func(t *testing.T, r *Result)
	}{
		{
			name:  "builds into output",
			app:   "web",
			spec:  "name: web\nbuild: {command: 'mkdir out && cp VERSION out/ && echo built', output: out}\nrun: {command: ./web}\n",
			files: map[string]string{"VERSION": "v1"},
			check: func(t *testing.T, r *Result) {
				if len(r.Manifest.Files) != 1 || r.Manifest.Files[0].Path != "VERSION" {
					t.Errorf("files = %+v", r.Manifest.Files)
				}
				if !strings.Contains(r.Log, "built") {
					t.Errorf("log = %q", r.Log)
				}
				if r.ReleaseID != manifest.ReleaseID(r.ManifestBytes) {
					t.Error("release id is not the manifest's digest")
				}
			},
		},
		{
			name:     "failing build keeps last lines",
			app:      "web",
			spec:     "name: web\nbuild: {command: 'for i in $(seq 1 100); do echo line $i; done; exit 3'}\nrun: {command: x}\n",
			files:    map[string]string{},
			wantKind: errkind.FailedPrecondition,
			wantMsg:  "line 100",
		},
		{
			name:     "timeout",
			app:      "web",
			spec:     "name: web\nbuild: {command: 'sleep 30', timeout: 200ms}\nrun: {command: x}\n",
			files:    map[string]string{},
			wantKind: errkind.FailedPrecondition,
			wantMsg:  "did not finish within 200ms",
		},
		{
			name:     "hostile symlink in output",
			app:      "web",
			spec:     "name: web\nbuild: {command: 'ln -s /etc/passwd leak'}\nrun: {command: x}\n",
			files:    map[string]string{},
			wantKind: errkind.InvalidArgument,
			wantMsg:  "leak",
		},
		{
			name:     "output outside source",
			app:      "web",
			spec:     "name: web\nbuild: {command: 'ln -s / out', output: out}\nrun: {command: x}\n",
			files:    map[string]string{},
			wantKind: errkind.InvalidArgument,
			wantMsg:  "leads outside",
		},
		{
			name:  "migrations read from the release",
			app:   "web",
			spec:  "name: web\nrun: {command: x}\nmigrations: db/migrations\n",
			files: map[string]string{"db/migrations/0002_b.up.sql": "SELECT 2;", "db/migrations/0001_a.up.sql": "SELECT 1;", "db/migrations/README": "x"},
			check: func(t *testing.T, r *Result) {
				if len(r.Migrations) != 2 || r.Migrations[0].Name != "0001_a.up.sql" || r.Migrations[1].SQL != "SELECT 2;" {
					t.Errorf("migrations = %+v", r.Migrations)
				}
			},
		},
		{
			name:     "duplicate migration versions",
			app:      "web",
			spec:     "name: web\nrun: {command: x}\nmigrations: db\n",
			files:    map[string]string{"db/0001_a.up.sql": "SELECT 1;", "db/01_b.up.sql": "SELECT 1;"},
			wantKind: errkind.InvalidArgument,
			wantMsg:  `"0001_a.up.sql" and "01_b.up.sql" have the same version 1`,
		},
		{
			name:     "missing migrations dir",
			app:      "web",
			spec:     "name: web\nrun: {command: x}\nmigrations: db\n",
			files:    map[string]string{},
			wantKind: errkind.InvalidArgument,
			wantMsg:  `migrations "db": no such directory in the build output`,
		},
		{
			name:     "name mismatch",
			app:      "api",
			spec:     "name: web\nrun: {command: x}\n",
			files:    map[string]string{},
			wantKind: errkind.InvalidArgument,
			wantMsg:  `names the application "web"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			scratch := t.TempDir()
			b := New(Config{ScratchDir: scratch, Sink: &memSink{}})
			src := source(t, tt.spec, tt.files)
			start := time.Now()
			r, err := b.Build(context.Background(), tt.app, src)
			if tt.wantKind != nil {
				if !errors.Is(err, tt.wantKind) || !strings.Contains(err.Error(), tt.wantMsg) {
					t.Fatalf("err = %v, want %v containing %q", err, tt.wantKind, tt.wantMsg)
				}
				if time.Since(start) > 20*time.Second {
					t.Fatal("a failed build took too long")
				}
				if entries, _ := os.ReadDir(scratch); len(entries) != 0 {
					t.Errorf("scratch dir not cleaned: %v", entries)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, r)
			if err := r.Cleanup(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Join(src, "out")); !errors.Is(err, os.ErrNotExist) {
				t.Error("the build ran in the source directory, not in a scratch copy")
			}
		})
	}
}

func TestSameSourceSameRelease(t *testing.T) {
	src := source(t, "name: web\nrun: {command: x}\n", map[string]string{"a": "1"})
	b := New(Config{ScratchDir: t.TempDir(), Sink: &memSink{}})
	r1, err := b.Build(context.Background(), "web", src)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := b.Build(context.Background(), "web", src)
	if err != nil {
		t.Fatal(err)
	}
	if r1.ReleaseID != r2.ReleaseID {
		t.Fatalf("ids differ: %s %s", r1.ReleaseID, r2.ReleaseID)
	}
}
