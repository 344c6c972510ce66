package appspec

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/cutover-dev/cutover/pkg/errkind"
)

// The limits of a cutover.yaml, checked by Parse and Validate (and so at
// registration and at every build), each documented in docs/limits.md. They
// bound what the controller keeps for an application and what every release's
// manifest carries to the agents.
const (
	// MaxFileBytes is the largest cutover.yaml.
	MaxFileBytes = 64 << 10
	// MaxCommandBytes bounds each command: build.command, run.command, each
	// hook's command and package.command.
	MaxCommandBytes = 16 << 10
	// MaxPathBytes bounds each path: build.output, migrations,
	// package.output and each package.when_changed glob.
	MaxPathBytes = 1024
	// MaxURLBytes bounds run.health.
	MaxURLBytes = 2048
	// MaxHooks bounds the hooks of each kind (before_activate, validate,
	// after_activate).
	MaxHooks = 32
	// MaxLabels bounds the labels of one hook.
	MaxLabels = 16
	// MaxLabelBytes bounds each label's key and each label's value.
	MaxLabelBytes = 253
	// MaxGlobs bounds package.when_changed.
	MaxGlobs = 64
)

// maxNameBytes is the longest name (a DNS label): ValidName checks the rest.
const maxNameBytes = 63

// checkLimits checks every string field against its limit, and that it is
// UTF-8 without NUL bytes (a command with a NUL cannot be executed, and a
// manifest, which is JSON, would carry invalid UTF-8 altered). Errors are
// errkind.InvalidArgument and name the field.
func (s *Spec) checkLimits() error {
	type field struct {
		name  string
		value string
		max   int
	}
	fields := []field{
		{"name", s.Name, maxNameBytes},
		{"build.command", s.Build.Command, MaxCommandBytes},
		{"build.output", s.Build.Output, MaxPathBytes},
		{"run.command", s.Run.Command, MaxCommandBytes},
		{"run.health", s.Run.Health, MaxURLBytes},
		{"migrations", s.Migrations, MaxPathBytes},
	}
	for _, k := range HookKinds {
		hs := s.Hooks.Of(k)
		if len(hs) > MaxHooks {
			return tooMany(fmt.Sprintf("hooks.%s", k), len(hs), MaxHooks, "hooks")
		}
		for i, h := range hs {
			where := fmt.Sprintf("hooks.%s[%d]", k, i)
			fields = append(fields, field{where + ".command", h.Command, MaxCommandBytes}, field{where + ".on", h.On, 8 /* "each" or "once", checked later */})
			if len(h.Labels) > MaxLabels {
				return tooMany(where+".labels", len(h.Labels), MaxLabels, "labels")
			}
			for key, v := range h.Labels {
				fields = append(fields, field{where + ".labels key", key, MaxLabelBytes}, field{fmt.Sprintf("%s.labels[%.64q]", where, key), v, MaxLabelBytes})
			}
		}
	}
	if p := s.Package; p != nil {
		fields = append(fields, field{"package.command", p.Command, MaxCommandBytes}, field{"package.output", p.Output, MaxPathBytes})
		if len(p.WhenChanged) > MaxGlobs {
			return tooMany("package.when_changed", len(p.WhenChanged), MaxGlobs, "globs")
		}
		for i, g := range p.WhenChanged {
			fields = append(fields, field{fmt.Sprintf("package.when_changed[%d]", i), g, MaxPathBytes})
		}
	}
	for _, f := range fields {
		if len(f.value) > f.max {
			return fmt.Errorf("app spec: %s is %d bytes long, more than the %d allowed (see docs/limits.md); nothing was registered or built: put a long script in a file of the application and name that file here: %w",
				f.name, len(f.value), f.max, errkind.InvalidArgument)
		}
		if !utf8.ValidString(f.value) || strings.ContainsRune(f.value, 0) {
			return fmt.Errorf("app spec: %s %.64q is not UTF-8 text without NUL bytes: %w", f.name, f.value, errkind.InvalidArgument)
		}
	}
	return nil
}

func tooMany(field string, n, max int, what string) error {
	return fmt.Errorf("app spec: %s has %d %s, more than the %d allowed (see docs/limits.md): %w", field, n, what, max, errkind.InvalidArgument)
}
