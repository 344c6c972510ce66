// Package flagfile fills a flag.FlagSet from a YAML config file whose keys are
// the flag names, so that both daemons accept --config FILE with the same
// keys as their flags. Flags given on the command line win over the file.
//
// A file looks like this (cutover-agent):
//
//	controller: controller.internal:7070
//	environment: production
//	data-dir: /var/lib/cutover-agent
//	env: [PORT=8080, DATABASE_URL=postgres://…]   # repeatable flag: a list
//	label: {role: scheduler}                      # or a map, for KEY=VALUE flags
//
// A scalar is given to the flag's Set as it is written; a list calls Set once
// per item, in order; a map calls Set once per entry with "KEY=VALUE", in the
// file's order. A list or map is refused for a flag whose Value is a
// flag.Getter that returns a single value (every flag the standard library
// defines), since such a flag would keep only the last item.
package flagfile

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"reflect"

	"go.yaml.in/yaml/v3"

	"github.com/cutover-dev/cutover/pkg/errkind"
)

// ConfigFlag is the name of the flag that names the config file. A file may
// not set it.
const ConfigFlag = "config"

// Load reads the YAML file at path and sets, through fs.Set, every flag the
// file names that was not set on the command line (as fs.Visit reports it:
// after fs.Parse, or fs.Set, before Load), so call it after fs.Parse. If any key is unknown (the error suggests the
// closest flag name) or any value is refused by its flag, Load returns every
// such problem at once, each naming the file, the line and the key, as an
// errkind.InvalidArgument error; flags the file set before the first problem
// keep their new values, so the caller should stop. A file that cannot be read
// is an errkind.NotFound (missing) or plain error naming the path.
func Load(fs *flag.FlagSet, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return errkind.New(errkind.NotFound, fmt.Sprintf(
				"config file %s does not exist: nothing was loaded; check the --%s path", path, ConfigFlag))
		}
		return fmt.Errorf("read config file %s: nothing was loaded: %w", path, err)
	}
	return load(fs, path, data)
}

// Parse parses args into fs and then, if fs defines a --config flag and its
// value is not empty (set on the command line or by default), loads that file
// with Load.
func Parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	f := fs.Lookup(ConfigFlag)
	if f == nil || f.Value.String() == "" {
		return nil
	}
	return Load(fs, f.Value.String())
}

func load(fs *flag.FlagSet, path string, data []byte) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return errkind.New(errkind.InvalidArgument, fmt.Sprintf(
			"config file %s is not valid YAML: %v; nothing was loaded", path, err))
	}
	if doc.Kind == 0 { // empty file
		return nil
	}
	root := resolve(doc.Content[0])
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil // only comments
	}
	if root.Kind != yaml.MappingNode {
		return errkind.New(errkind.InvalidArgument, fmt.Sprintf(
			"config file %s: line %d: the top level must be a map of flag names to values; nothing was loaded",
			path, root.Line))
	}

	onCommandLine := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { onCommandLine[f.Name] = true })

	// First pass: keys. Unknown or repeated keys stop everything before any
	// flag is changed.
	var problems []error
	seen := map[string]int{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k := root.Content[i]
		name := k.Value
		switch {
		case name == ConfigFlag:
			problems = append(problems, fmt.Errorf("line %d: key %q cannot be set from a config file", k.Line, name))
		case fs.Lookup(name) == nil:
			problems = append(problems, fmt.Errorf("line %d: unknown key %q%s", k.Line, name, suggest(fs, name)))
		case seen[name] != 0:
			problems = append(problems, fmt.Errorf("line %d: key %q is already set on line %d", k.Line, name, seen[name]))
		}
		seen[name] = k.Line
	}
	if len(problems) > 0 {
		return fileError(path, problems, "nothing was loaded")
	}

	// Second pass: values.
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], resolve(root.Content[i+1])
		if onCommandLine[k.Value] {
			continue
		}
		if err := setValue(fs.Lookup(k.Value), v); err != nil {
			problems = append(problems, fmt.Errorf("line %d: key %q: %w", v.Line, k.Value, err))
		}
	}
	if len(problems) > 0 {
		return fileError(path, problems, "the file was only partly applied: do not go on with these flags")
	}
	return nil
}

// setValue gives v to f.Value.Set: a scalar once, a list item by item, a map
// entry by entry as KEY=VALUE.
func setValue(f *flag.Flag, v *yaml.Node) error {
	switch v.Kind {
	case yaml.ScalarNode:
		if v.Tag == "!!null" {
			return errors.New("has no value: give one or remove the key")
		}
		return set(f, v.Value)
	case yaml.SequenceNode:
		if single(f) {
			return errors.New("takes a single value, not a list")
		}
		for _, item := range v.Content {
			item = resolve(item)
			if item.Kind != yaml.ScalarNode || item.Tag == "!!null" {
				return fmt.Errorf("line %d: list items must be plain values", item.Line)
			}
			if err := set(f, item.Value); err != nil {
				return err
			}
		}
		return nil
	case yaml.MappingNode:
		if single(f) {
			return errors.New("takes a single value, not a map")
		}
		for i := 0; i+1 < len(v.Content); i += 2 {
			mk, mv := resolve(v.Content[i]), resolve(v.Content[i+1])
			if mk.Kind != yaml.ScalarNode || mv.Kind != yaml.ScalarNode {
				return fmt.Errorf("line %d: map entries must be KEY: VALUE with plain values", mk.Line)
			}
			val := mv.Value
			if mv.Tag == "!!null" {
				val = ""
			}
			if err := set(f, mk.Value+"="+val); err != nil {
				return err
			}
		}
		return nil
	default:
		return errors.New("has a value of an unsupported kind")
	}
}

func set(f *flag.Flag, s string) error {
	if err := f.Value.Set(s); err != nil {
		if g, ok := f.Value.(flag.Getter); ok && g.Get() != nil {
			return fmt.Errorf("value %q refused: %w (want a %T)", s, err, g.Get())
		}
		return fmt.Errorf("value %q refused: %w", s, err)
	}
	return nil
}

// single reports whether f keeps only one value: it is a flag.Getter whose
// value is not a slice or map (every flag the standard library defines).
func single(f *flag.Flag) bool {
	g, ok := f.Value.(flag.Getter)
	if !ok {
		return false
	}
	got := g.Get()
	if got == nil {
		return true
	}
	k := reflect.TypeOf(got).Kind()
	return k != reflect.Slice && k != reflect.Map
}

func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func fileError(path string, problems []error, unchanged string) error {
	msg := fmt.Sprintf("config file %s", path)
	for _, p := range problems {
		msg += "\n  " + p.Error()
	}
	msg += "\n" + unchanged + "; fix the file (its keys are the flag names, see --help) and start again"
	return errkind.New(errkind.InvalidArgument, msg)
}
