package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"

	"go.yaml.in/yaml/v3"

	"github.com/cutover-dev/cutover/pkg/atomicfile"
)

// config is cutoverctl's config file, like a kubeconfig or NOMAD_TOKEN kept
// on disk: where the controller is and how to trust and prove oneself to it.
// `cutoverctl login` writes it, `cutoverctl logout` removes the token from
// it. Flags and environment variables win over it.
//
//	controller: ctl.internal:7070
//	ca-file: /etc/cutover/ca.crt
//	token: cutover.0123456789abcdef.…   # or token-file: /path/to/file
type config struct {
	Controller string `yaml:"controller,omitempty"`
	CAFile     string `yaml:"ca-file,omitempty"`
	Token      string `yaml:"token,omitempty"`
	TokenFile  string `yaml:"token-file,omitempty"`
}

// configPath returns where the config file is: $CUTOVER_CONFIG, else
// $XDG_CONFIG_HOME/cutover/config.yaml, else ~/.config/cutover/config.yaml;
// "" when none of these variables is set.
func configPath(getenv func(string) string) string {
	if p := getenv("CUTOVER_CONFIG"); p != "" {
		return p
	}
	if d := getenv("XDG_CONFIG_HOME"); d != "" {
		return filepath.Join(d, "cutover", "config.yaml")
	}
	if h := getenv("HOME"); h != "" {
		return filepath.Join(h, ".config", "cutover", "config.yaml")
	}
	return ""
}

// loadConfig reads the config file at path. A missing file (or path "") is
// an empty config. Relative ca-file and token-file paths are taken from the
// file's directory. The error never holds the token.
func loadConfig(path string) (*config, error) {
	cfg := &config{}
	if path == "" {
		return cfg, nil
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return cfg, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read config file: %w", err) // *PathError names the path, not the content
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) { // io.EOF: an empty file
		// yaml's messages name the line and key, and show at most the first
		// 7 characters of a value: "cutover", not the secret.
		return nil, fmt.Errorf("config file %s: %v; want the keys controller, ca-file, token or token-file", path, err)
	}
	if cfg.Token != "" && cfg.TokenFile != "" {
		return nil, fmt.Errorf("config file %s sets both token and token-file; keep one", path)
	}
	dir := filepath.Dir(path)
	for _, p := range []*string{&cfg.CAFile, &cfg.TokenFile} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	return cfg, nil
}

// saveConfig writes cfg to path, readable by its owner only (0600, in a
// directory created 0700), replacing the old file in one rename so that a
// crash leaves the old or the new file, never half of one.
func saveConfig(path string, cfg *config) error {
	if path == "" {
		return errors.New("no config file: set CUTOVER_CONFIG, XDG_CONFIG_HOME or HOME")
	}
	data, err := yaml.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("encode config file: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create the config file's directory: %w", err)
	}
	if err := atomicfile.Write(path, data, 0o600); err != nil {
		return fmt.Errorf("write config file %s: %w", path, err)
	}
	return nil
}

// exposed returns a warning when the file at path, which holds a secret,
// may be read by its group or by others; "" otherwise (and on Windows,
// whose modes do not say).
func exposed(path string, info fs.FileInfo) string {
	if runtime.GOOS == "windows" || info.Mode().Perm()&0o077 == 0 {
		return ""
	}
	return fmt.Sprintf("warning: %s holds a token and is readable by others (mode %04o); run: chmod 600 %s",
		path, info.Mode().Perm(), path)
}
