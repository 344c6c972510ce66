package main

// This file shows what the demo adds to hello: hooks around each swap and
// a package step.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/cutover-dev/cutover/pkg/poll"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// demoSpec is what the demo adds to hello's cutover.yaml: hooks that log
// where they ran to hookLog, and a package step.
func demoSpec(hookLog string) string {
	record := fmt.Sprintf(`echo "$CUTOVER_HOOK $(cat VERSION) $PWD" >> %s`, hookLog)
	return fmt.Sprintf(`hooks:
  before_activate: [{command: '%[1]s', on: once}]   # e.g. suspend the scheduler
  validate: [{command: '%[1]s; test -s VERSION'}]  # a smoke test; failing it rolls back
  after_activate: [{command: '%[1]s', on: once}]    # e.g. resume the scheduler
package: {command: 'mkdir -p out && echo "hello $(cat VERSION), packaged for the mobile app" > out/hello.pkg', when_changed: [VERSION], output: out/hello.pkg}
`, record)
}

// hookLines returns the lines of the hook log.
func (d *demo) hookLines() ([]string, error) {
	b, err := os.ReadFile(d.hookLog)
	if err != nil {
		return nil, fmt.Errorf("read the hook log: %w", err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n"), nil
}

// showHooks prints the lines of the hook log after the first skip ones,
// as "AGENT  HOOK  ran in the VERSION release", and returns how many lines
// it holds.
func (d *demo) showHooks(skip int) (int, error) {
	lines, err := d.hookLines()
	if err != nil {
		return 0, err
	}
	if len(lines) <= skip {
		return len(lines), fmt.Errorf("no hook ran (the hook log %s has %d lines)", d.hookLog, len(lines))
	}
	for _, l := range lines[skip:] {
		f := strings.Fields(l) // HOOK VERSION DIR/AGENT/root/hello/releases/ID
		if len(f) != 3 {
			return 0, fmt.Errorf("hook log line %q", l)
		}
		agent := filepath.Base(filepath.Dir(filepath.Dir(filepath.Dir(filepath.Dir(f[2])))))
		fmt.Fprintf(d.out, "     %-5s %-16s ran in the %s release (where current pointed)\n", agent, f[0], f[1])
	}
	return len(lines), nil
}

// showPackage waits for the package step of id, downloads its output with
// cutoverctl deploy package and prints it.
func (d *demo) showPackage(ctx context.Context, id string) error {
	var p *cutoverv1.DeploymentPackage
	err := poll.Until(ctx, time.Minute, func() error {
		out, err := d.runCtlQuiet(ctx, "-o", "json", "deploy", "get", id)
		if err != nil {
			return err
		}
		var dep cutoverv1.Deployment
		if err := protojson.Unmarshal([]byte(out), &dep); err != nil {
			return fmt.Errorf("read deploy get -o json: %w", err)
		}
		if p = dep.GetPackage(); p == nil || !(p.GetRan() || p.GetError() != "") {
			return fmt.Errorf("the package step of %s has not run: %v", id, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if p.GetError() != "" {
		return fmt.Errorf("the package step of %s failed: %s", id, p.GetError())
	}
	fmt.Fprintf(d.out, "   It ran in %s because %s changed, and produced %d bytes.\n",
		p.GetDuration().AsDuration().Round(time.Millisecond), strings.Join(p.GetChanged(), ", "), p.GetSizeBytes())
	file := filepath.Join(d.dir, "hello.pkg")
	if _, err := d.ctl(ctx, "deploy", "package", id, "-o", file); err != nil {
		return err
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	fmt.Fprintf(d.out, "   %s holds: %s", file, b)
	return nil
}

// runCtlQuiet runs cutoverctl without printing anything, for the demo's
// own polling.
func (d *demo) runCtlQuiet(ctx context.Context, args ...string) (string, error) {
	out := d.out
	d.out = nopWriter{}
	defer func() { d.out = out }()
	return d.runCtl(ctx, false, args...)
}

type nopWriter struct{}

func (nopWriter) Write(p []byte) (int, error) { return len(p), nil }

// appendFile appends text to the file at path.
func appendFile(path, text string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// indent prefixes every line of text with prefix.
func indent(text, prefix string) string {
	lines := strings.SplitAfter(text, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = prefix + l
		}
	}
	return strings.Join(lines, "")
}
