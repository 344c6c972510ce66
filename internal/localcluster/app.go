package localcluster

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Answer asks the app listening on 127.0.0.1:port for "/" and returns the
// body without surrounding space: for examples/hello, its version.
func Answer(port int) (string, error) {
	client := &http.Client{Timeout: 2 * time.Second}
	resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET / on port %d: %s", port, resp.Status)
	}
	return strings.TrimSpace(string(b)), nil
}

// CopyApp copies an application's source directory src to dst, leaving
// out build output (bin/), keeping file modes, and writes version into
// dst/VERSION.
func CopyApp(src, dst, version string) error {
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == "bin" {
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, info.Mode().Perm())
	})
	if err != nil {
		return fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	return WriteVersion(dst, version)
}

// WriteVersion sets the VERSION file of the application source in dir.
func WriteVersion(dir, version string) error {
	if err := os.WriteFile(filepath.Join(dir, "VERSION"), []byte(version+"\n"), 0o644); err != nil {
		return fmt.Errorf("write VERSION: %w", err)
	}
	return nil
}

// ListenApp is an application made of examples/listen: the Go app (built
// by the caller) or the Python one, with or without run.listen.
type ListenApp struct {
	// Name is the application's name (cutover.yaml's name).
	Name string
	// Binary is the built examples/listen; Python, when set instead, is
	// the path of examples/listen/app.py.
	Binary, Python string
	// Listen gives it run.listen (tcp://127.0.0.1:${PORT}) and a health
	// check on /healthz through the private socket; without, the app
	// listens on PORT itself and is checked on http://127.0.0.1:${PORT}/healthz.
	Listen bool
	// HealthURL, with Listen, writes run.health as the URL
	// http://127.0.0.1:${PORT}/healthz instead of the path /healthz: the
	// agent asks the private socket for its path all the same, and an
	// agent that does not hand sockets over yet checks the app's own PORT.
	HealthURL bool
}

// Write writes the app's source into dir (created if needed) at version:
// the program, cutover.yaml (no build step) and VERSION.
func (a ListenApp) Write(dir, version string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	command := "exec ./listen"
	program, dst := a.Binary, filepath.Join(dir, "listen")
	if a.Python != "" {
		command = "exec python3 app.py"
		program, dst = a.Python, filepath.Join(dir, "app.py")
	}
	if err := CopyFile(program, dst); err != nil {
		return err
	}
	run := fmt.Sprintf("run:\n  command: %s\n  stop_grace: 5s\n  health_timeout: 10s\n", command)
	health := "\"http://127.0.0.1:${PORT}/healthz\""
	if a.Listen {
		run += "  listen: [\"tcp://127.0.0.1:${PORT}\"]\n"
		if !a.HealthURL {
			health = "/healthz"
		}
	}
	run += "  health: " + health + "\n"
	spec := fmt.Sprintf("name: %s\nbuild:\n  command: \"true\"\n  output: .\n%s", a.Name, run)
	if err := os.WriteFile(filepath.Join(dir, "cutover.yaml"), []byte(spec), 0o644); err != nil {
		return err
	}
	return WriteVersion(dir, version)
}

// SetUnhealthy creates (or removes) the file UNHEALTHY in the app source
// in dir: examples/listen's /healthz answers 500 while it exists.
func SetUnhealthy(dir string, unhealthy bool) error {
	marker := filepath.Join(dir, "UNHEALTHY")
	if unhealthy {
		return os.WriteFile(marker, []byte("the health check of this release fails\n"), 0o644)
	}
	if err := os.Remove(marker); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// CopyFile copies src to dst with src's mode.
func CopyFile(src, dst string) error {
	info, err := os.Stat(src)
	if err != nil {
		return err
	}
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, info.Mode().Perm())
}
