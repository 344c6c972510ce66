// Package appspec reads and validates cutover.yaml, the app spec at the root
// of an application's source directory:
//
//	name: hello
//	build:
//	  command: go build -o bin/hello .   # run in a scratch copy of the source
//	  output: .                          # the directory that becomes the release
//	  timeout: 10m                       # optional
//	run:
//	  command: bin/hello                 # started by the agent in the release dir
//	  health: http://127.0.0.1:${PORT}/healthz   # optional
//	  stop_grace: 10s                    # optional: SIGTERM, then SIGKILL after this
//	  health_timeout: 30s                # optional
//	  listen: [tcp://0.0.0.0:${PORT}]    # optional: the agent owns the sockets (listen.go)
//	  stop_signal: SIGTERM               # optional
//	migrations: db/migrations            # optional: NNNN_name.up.sql files
//	hooks:                               # optional, run by the agents (hooks.go)
//	  before_activate:
//	    - {command: bin/console scheduler:suspend, timeout: 5m, on: once, labels: {role: scheduler}}
//	  validate: [{command: bin/smoke-test}]
//	  after_activate: [{command: bin/console scheduler:resume, on: once, labels: {role: scheduler}}]
//	package:                             # optional, run by the controller (hooks.go)
//	  command: make apk
//	  when_changed: [mobile/**]
//	  output: out/app.apk
package appspec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/cutover-dev/cutover/pkg/errkind"
)

// FileName is the app spec's file name at the root of a source directory.
const FileName = "cutover.yaml"

// Defaults used when the spec leaves a field empty.
const (
	DefaultStopGrace     = 10 * time.Second
	DefaultHealthTimeout = 30 * time.Second
)

// Spec is a parsed, validated cutover.yaml.
type Spec struct {
	// Name is the application's name, a DNS label.
	Name string `yaml:"name" json:"name"`
	// Build says how the controller builds a release.
	Build Build `yaml:"build" json:"build"`
	// Run says how an agent runs the release.
	Run Run `yaml:"run" json:"run"`
	// Migrations is a directory, relative to the release, of NNNN_name.up.sql files.
	Migrations string `yaml:"migrations,omitempty" json:"migrations,omitempty"`
	// Hooks are run by the agents around an activation (hooks.go).
	Hooks Hooks `yaml:"hooks,omitempty" json:"hooks,omitzero"`
	// Package is the optional package step run by the controller after an
	// activation (hooks.go).
	Package *Package `yaml:"package,omitempty" json:"package,omitempty"`
}

// Build is the build step, run by the controller in a scratch copy of the source.
type Build struct {
	// Command is run with `sh -c`; empty means the source is the release as is.
	Command string `yaml:"command,omitempty" json:"command,omitempty"`
	// Output is the directory, relative to the source, whose contents become the release.
	Output string `yaml:"output,omitempty" json:"output,omitempty"`
	// Timeout bounds the build; zero means the controller's default.
	Timeout time.Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
}

// Run is how an agent runs and checks the application.
type Run struct {
	// Command is run with `sh -c` in the release directory.
	Command string `yaml:"command" json:"command"`
	// Health is an optional HTTP URL that must answer 2xx after a start; ${VAR} expands from the agent's --env.
	Health string `yaml:"health,omitempty" json:"health,omitempty"`
	// StopGrace is how long a stop waits after SIGTERM before SIGKILL.
	StopGrace time.Duration `yaml:"stop_grace,omitempty" json:"stop_grace,omitempty"`
	// HealthTimeout is how long a start may take to become healthy.
	HealthTimeout time.Duration `yaml:"health_timeout,omitempty" json:"health_timeout,omitempty"`
	// Listen names the sockets the agent opens once and hands to every
	// process of the app by systemd socket activation (LISTEN_FDS,
	// LISTEN_PID, LISTEN_FDNAMES), "tcp://HOST:PORT" or "unix:///PATH",
	// ${VAR} expanded from the agent's --env. With it, a new release starts
	// beside the old one on the same sockets and the old one is told to
	// stop only once the new one is healthy (listen.go): no request is
	// refused. Without it, the app is stopped and started again.
	Listen []string `yaml:"listen,omitempty" json:"listen,omitempty"`
	// StopSignal tells a process to stop (then SIGKILL after StopGrace):
	// SIGTERM when empty; SIGQUIT, SIGINT, SIGHUP, SIGUSR1, SIGUSR2 or
	// SIGWINCH for servers whose graceful stop takes another.
	StopSignal string `yaml:"stop_signal,omitempty" json:"stop_signal,omitempty"`
}

// Load reads and validates DIR/cutover.yaml. Errors are errkind.InvalidArgument
// (or NotFound when the file is missing). A file larger than MaxFileBytes is
// refused without being read whole.
func Load(dir string) (*Spec, error) {
	name := filepath.Join(dir, FileName)
	f, err := os.Open(name)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s has no %s: every application needs one at the root of its source directory: %w", dir, FileName, errkind.NotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read app spec: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read app spec: %w", err)
	}
	spec, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, FileName), err)
	}
	return spec, nil
}

// Parse decodes and validates a cutover.yaml. Unknown keys are refused, so a
// typo does not go unnoticed, and so is a file larger than MaxFileBytes.
// Errors are errkind.InvalidArgument.
func Parse(b []byte) (*Spec, error) {
	if len(b) > MaxFileBytes {
		return nil, fmt.Errorf("%s is larger than %d bytes (see docs/limits.md): keep long scripts in files of the application and name them in the commands: %w",
			FileName, MaxFileBytes, errkind.InvalidArgument)
	}
	var s Spec
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%v: %w", err, errkind.InvalidArgument)
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return &s, nil
}

// Validate checks the spec: its fields, and their sizes against the limits
// (limits.go). Errors are errkind.InvalidArgument.
func (s *Spec) Validate() error {
	if err := s.checkLimits(); err != nil {
		return err
	}
	if err := ValidName(s.Name); err != nil {
		return fmt.Errorf("app spec name: %w", err)
	}
	if strings.TrimSpace(s.Run.Command) == "" {
		return fmt.Errorf("app spec %q: run.command is required: %w", s.Name, errkind.InvalidArgument)
	}
	for field, p := range map[string]string{"build.output": s.Build.Output, "migrations": s.Migrations} {
		if err := validRelDir(p); err != nil {
			return fmt.Errorf("app spec %q: %s %q: %v: %w", s.Name, field, p, err, errkind.InvalidArgument)
		}
	}
	for field, d := range map[string]time.Duration{"build.timeout": s.Build.Timeout, "run.stop_grace": s.Run.StopGrace, "run.health_timeout": s.Run.HealthTimeout} {
		if d < 0 {
			return fmt.Errorf("app spec %q: %s must not be negative: %w", s.Name, field, errkind.InvalidArgument)
		}
	}
	if err := s.validateListen(); err != nil {
		return err
	}
	return s.validateExtras()
}

// OutputDir returns build.output, "." when empty.
func (s *Spec) OutputDir() string {
	if s.Build.Output == "" {
		return "."
	}
	return path.Clean(s.Build.Output)
}

// StopGrace returns run.stop_grace or its default.
func (s *Spec) StopGrace() time.Duration {
	if s.Run.StopGrace == 0 {
		return DefaultStopGrace
	}
	return s.Run.StopGrace
}

// HealthTimeout returns run.health_timeout or its default.
func (s *Spec) HealthTimeout() time.Duration {
	if s.Run.HealthTimeout == 0 {
		return DefaultHealthTimeout
	}
	return s.Run.HealthTimeout
}

// Expand replaces ${VAR} and $VAR in str with env's values (empty when unset).
func (s *Spec) Expand(env map[string]string, str string) string {
	return os.Expand(str, func(k string) string { return env[k] })
}

func validRelDir(p string) error {
	if p == "" {
		return nil
	}
	if path.IsAbs(p) || strings.Contains(p, `\`) {
		return errors.New("must be a relative path with '/' separators")
	}
	if c := path.Clean(p); c == ".." || strings.HasPrefix(c, "../") {
		return errors.New("must stay inside the source directory")
	}
	return nil
}

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// ValidName checks that name is a DNS label (RFC 1123: lowercase letters,
// digits and '-', 1 to 63 characters, not starting or ending with '-'), as
// environment, application and agent names must be. Errors are
// errkind.InvalidArgument.
func ValidName(name string) error {
	if !dnsLabel.MatchString(name) {
		return fmt.Errorf("%q is not a valid name: use 1-63 lowercase letters, digits and '-', starting and ending with a letter or digit: %w", name, errkind.InvalidArgument)
	}
	return nil
}
