package logging_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/cutover-dev/cutover/pkg/errkind"
	"github.com/cutover-dev/cutover/pkg/logging"
)

func TestNew(t *testing.T) {
	tests := []struct {
		name, format, level string
		wantErr             string // substring; empty: no error
		wantJSON            bool
		debugShown          bool
		infoShown           bool
		warnShown           bool
	}{
		{name: "defaults", infoShown: true, warnShown: true},
		{name: "text info", format: "text", level: "info", infoShown: true, warnShown: true},
		{name: "json debug", format: "json", level: "debug", wantJSON: true, debugShown: true, infoShown: true, warnShown: true},
		{name: "upper case", format: "JSON", level: "WARN", wantJSON: true, warnShown: true},
		{name: "warning alias", format: "text", level: "warning", warnShown: true},
		{name: "error level", format: "text", level: "error"},
		{name: "bad format", format: "logfmt", level: "info", wantErr: `log format "logfmt" is not known: use one of text|json`},
		{name: "bad level", format: "text", level: "verbose", wantErr: `log level "verbose" is not known: use one of debug|info|warn|error`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			log, err := logging.New(&buf, tt.format, tt.level)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("New(%q, %q) error = %v, want one containing %q", tt.format, tt.level, err, tt.wantErr)
				}
				if !errors.Is(err, errkind.InvalidArgument) {
					t.Errorf("error %v is not errkind.InvalidArgument", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("New(%q, %q): %v", tt.format, tt.level, err)
			}
			log.Debug("d-line", logging.KeyDeployment, "dep-1")
			log.Info("i-line", logging.KeyEnvironment, "production")
			log.Warn("w-line", logging.KeyAgent, "fe1")
			log.Error("e-line", logging.KeyRelease, "r1", logging.KeyApplication, "hello")
			out := buf.String()
			for _, c := range []struct {
				msg   string
				shown bool
			}{{"d-line", tt.debugShown}, {"i-line", tt.infoShown}, {"w-line", tt.warnShown}, {"e-line", true}} {
				if got := strings.Contains(out, c.msg); got != c.shown {
					t.Errorf("%s shown = %v, want %v; output:\n%s", c.msg, got, c.shown, out)
				}
			}
			lines := strings.Split(strings.TrimSpace(out), "\n")
			last := lines[len(lines)-1]
			if tt.wantJSON {
				var m map[string]any
				if err := json.Unmarshal([]byte(last), &m); err != nil {
					t.Fatalf("line %q is not JSON: %v", last, err)
				}
				if m["release"] != "r1" || m["application"] != "hello" {
					t.Errorf("JSON line %v lacks release/application fields", m)
				}
			} else if !strings.Contains(last, "release=r1 application=hello") {
				t.Errorf("text line %q lacks release/application fields", last)
			}
		})
	}
}

func TestKeys(t *testing.T) {
	// These spellings are part of the public contract (DESIGN.md): dashboards
	// and log queries rely on them.
	want := map[string]string{
		logging.KeyDeployment:  "deployment",
		logging.KeyEnvironment: "environment",
		logging.KeyAgent:       "agent",
		logging.KeyRelease:     "release",
		logging.KeyApplication: "application",
	}
	for got, w := range want {
		if got != w {
			t.Errorf("key %q, want %q", got, w)
		}
	}
}
