package appspec

import (
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/cutover-dev/cutover/pkg/errkind"
)

// DefaultHookTimeout bounds a hook whose timeout is not given.
const DefaultHookTimeout = 5 * time.Minute

// HookKind says when in stage 2 a hook runs.
type HookKind string

// The hook kinds, in the order stage 2 runs them: before_activate before the
// SQL and the swap, validate after the swap, the restart and the health
// check (a failure rolls the activation back), after_activate last (also
// when stage 2 failed, on the agents where before_activate ran).
const (
	BeforeActivate HookKind = "before_activate"
	Validate       HookKind = "validate"
	AfterActivate  HookKind = "after_activate"
)

// HookKinds lists the kinds in stage 2's order.
var HookKinds = []HookKind{BeforeActivate, Validate, AfterActivate}

// Where a hook runs.
const (
	// OnEach runs the hook on every matching agent.
	OnEach = "each"
	// OnOnce runs the hook on one matching agent: the first by name.
	OnOnce = "once"
)

// Hooks are the commands agents run around an activation.
type Hooks struct {
	// BeforeActivate run before the SQL and the swap (for example: suspend
	// the scheduler and wait for running jobs).
	BeforeActivate []Hook `yaml:"before_activate,omitempty" json:"before_activate,omitempty"`
	// AfterActivate run last (for example: resume the scheduler).
	AfterActivate []Hook `yaml:"after_activate,omitempty" json:"after_activate,omitempty"`
	// Validate run after the swap and the health check; one that does not
	// exit 0 rolls the activation back.
	Validate []Hook `yaml:"validate,omitempty" json:"validate,omitempty"`
}

// Hook is one command an agent runs with `sh -c`, in the directory `current`
// points to when it runs (the new release's when nothing runs yet), with
// the agent's --env variables.
type Hook struct {
	// Command is run with `sh -c`.
	Command string `yaml:"command" json:"command"`
	// Timeout bounds the hook; zero means DefaultHookTimeout.
	Timeout time.Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	// On is "each" (default: every matching agent) or "once" (one of them).
	On string `yaml:"on,omitempty" json:"on,omitempty"`
	// Labels limit the hook to agents whose --label values include all of these.
	Labels map[string]string `yaml:"labels,omitempty" json:"labels,omitempty"`
}

// Of returns the hooks of kind k.
func (h *Hooks) Of(k HookKind) []Hook {
	switch k {
	case BeforeActivate:
		return h.BeforeActivate
	case AfterActivate:
		return h.AfterActivate
	case Validate:
		return h.Validate
	}
	return nil
}

// Empty says whether there is no hook at all.
func (h *Hooks) Empty() bool {
	return len(h.BeforeActivate)+len(h.AfterActivate)+len(h.Validate) == 0
}

// TimeoutOrDefault returns the hook's timeout, or DefaultHookTimeout.
func (h *Hook) TimeoutOrDefault() time.Duration {
	if h.Timeout == 0 {
		return DefaultHookTimeout
	}
	return h.Timeout
}

// Once says whether the hook runs on one agent only.
func (h *Hook) Once() bool { return h.On == OnOnce }

// Matches says whether an agent with labels carries every label the hook asks for.
func (h *Hook) Matches(labels map[string]string) bool {
	for k, v := range h.Labels {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

func (h *Hooks) validate() error {
	for _, k := range HookKinds {
		for i, hk := range h.Of(k) {
			where := fmt.Sprintf("hooks.%s[%d]", k, i)
			if strings.TrimSpace(hk.Command) == "" {
				return fmt.Errorf("%s: command is required", where)
			}
			if hk.Timeout < 0 {
				return fmt.Errorf("%s: timeout must not be negative", where)
			}
			if hk.On != "" && hk.On != OnEach && hk.On != OnOnce {
				return fmt.Errorf("%s: on is %q; use %q or %q", where, hk.On, OnEach, OnOnce)
			}
			for k, v := range hk.Labels {
				if k == "" || v == "" {
					return fmt.Errorf("%s: labels need a non-empty key and value (got %q: %q)", where, k, v)
				}
			}
		}
	}
	return nil
}

// Package is the package step: after a successful activation, the
// controller runs Command in a scratch copy of the release when a file
// matching WhenChanged differs from the previous release, and keeps the
// file at Output.
type Package struct {
	// Command is run with `sh -c` in a scratch copy of the release.
	Command string `yaml:"command" json:"command"`
	// WhenChanged are path.Match globs, relative to the release (a glob
	// ending in "/**" matches everything below a directory).
	WhenChanged []string `yaml:"when_changed" json:"when_changed"`
	// Output is the produced file, relative to the scratch copy.
	Output string `yaml:"output" json:"output"`
	// Timeout bounds the command; zero means DefaultHookTimeout.
	Timeout time.Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
}

// MatchesChanged says whether release path p matches one of WhenChanged.
func (p *Package) MatchesChanged(name string) bool {
	for _, g := range p.WhenChanged {
		if dir, ok := strings.CutSuffix(g, "/**"); ok {
			if name == dir || strings.HasPrefix(name, dir+"/") {
				return true
			}
			continue
		}
		if ok, _ := path.Match(g, name); ok {
			return true
		}
	}
	return false
}

func (p *Package) validate() error {
	if p == nil {
		return nil
	}
	if strings.TrimSpace(p.Command) == "" {
		return fmt.Errorf("package.command is required")
	}
	if len(p.WhenChanged) == 0 {
		return fmt.Errorf("package.when_changed needs at least one glob")
	}
	for _, g := range p.WhenChanged {
		if _, err := path.Match(strings.TrimSuffix(g, "/**"), ""); err != nil {
			return fmt.Errorf("package.when_changed %q: %v", g, err)
		}
	}
	if p.Output == "" || p.Output == "." {
		return fmt.Errorf("package.output is required: the file the command produces")
	}
	if err := validRelDir(p.Output); err != nil {
		return fmt.Errorf("package.output %q: %v", p.Output, err)
	}
	if p.Timeout < 0 {
		return fmt.Errorf("package.timeout must not be negative")
	}
	return nil
}

// validateExtras checks hooks and package; errors are InvalidArgument.
func (s *Spec) validateExtras() error {
	if err := s.Hooks.validate(); err != nil {
		return fmt.Errorf("app spec %q: %v: %w", s.Name, err, errkind.InvalidArgument)
	}
	if err := s.Package.validate(); err != nil {
		return fmt.Errorf("app spec %q: %v: %w", s.Name, err, errkind.InvalidArgument)
	}
	return nil
}

// HookRef names one hook of an application's spec: the controller picks
// hooks by reference, the agent reads them from the verified manifest.
type HookRef struct {
	Application string
	Kind        HookKind
	Index       int
}

// Resolve returns the hook ref names in s; false if there is none.
func (s *Spec) Resolve(ref HookRef) (Hook, bool) {
	hs := s.Hooks.Of(ref.Kind)
	if ref.Index < 0 || ref.Index >= len(hs) {
		return Hook{}, false
	}
	return hs[ref.Index], true
}
