package hook

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/pkg/appspec"
)

func TestRun(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "marker"), []byte("here"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := New(Config{Env: map[string]string{"GREETING": "hi"}, OutputLimit: 64})
	ref := appspec.HookRef{Application: "app", Kind: appspec.BeforeActivate}
	tests := []struct {
		name     string
		hook     appspec.Hook
		wantExit int
		wantErr  string
		wantOut  string
	}{
		{name: "ok, in dir, with env", hook: appspec.Hook{Command: `cat marker; echo " $GREETING $CUTOVER_HOOK $CUTOVER_RELEASE_ID"`}, wantOut: "here hi before_activate r1\n"},
		{name: "non-zero exit", hook: appspec.Hook{Command: "echo oops >&2; exit 3"}, wantExit: 3, wantErr: "exited with status 3", wantOut: "oops\n"},
		{name: "timeout kills the group", hook: appspec.Hook{Command: "sleep 30 & sleep 30", Timeout: 200 * time.Millisecond}, wantExit: -1, wantErr: "did not end within its timeout of 200ms"},
		{name: "tail only", hook: appspec.Hook{Command: "for i in $(seq 1 100); do echo line$i; done"}, wantOut: "line100\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			res := r.Run(context.Background(), dir, "r1", ref, tt.hook)
			if time.Since(start) > 10*time.Second {
				t.Errorf("took %s", time.Since(start))
			}
			if res.ExitCode != tt.wantExit || !strings.Contains(res.Error, tt.wantErr) || (tt.wantErr == "") != (res.Error == "") {
				t.Errorf("exit %d error %q, want %d %q", res.ExitCode, res.Error, tt.wantExit, tt.wantErr)
			}
			if !strings.HasSuffix(res.Output, tt.wantOut) || len(res.Output) > 64+len("…") {
				t.Errorf("output %q, want it to end with %q and hold at most 64 bytes", res.Output, tt.wantOut)
			}
			if res.Command != tt.hook.Command || res.Ref != ref {
				t.Errorf("result names %q %+v", res.Command, res.Ref)
			}
		})
	}
}
