package localcluster

import (
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
