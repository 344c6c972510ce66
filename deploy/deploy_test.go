package deploy_test

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// units are the systemd units, by daemon.
var units = map[string]string{
	"cutover-controller": "systemd/cutover-controller.service",
	"cutover-agent":      "systemd/cutover-agent.service",
}

// tool returns the path of the named command. When it is missing, the test
// fails under CI=true (CI must have installed it: .ci/run) and skips
// otherwise.
func tool(t *testing.T, name, debianPackage string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	msg := name + " is not installed (Debian package " + debianPackage + ": apt-get install -y " + debianPackage + ")"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + "; CI must install it")
	}
	t.Skip(msg)
	return ""
}

// run runs name with args in dir and returns its combined output and error.
func run(t *testing.T, dir, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "SYSTEMD_PAGER=", "SYSTEMD_COLORS=0")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// unitSettings parses a unit file into section -> key -> values (a key may
// appear more than once, e.g. Environment=).
func unitSettings(t *testing.T, path string) map[string]map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]map[string][]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = strings.Trim(line, "[]")
			out[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s: cannot parse line %q", path, line)
			}
			out[section][k] = append(out[section][k], v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// stageUnits copies the units into a temporary directory with ExecStart
// pointing at a stub executable there (systemd-analyze verify insists that
// the binary exists), and returns the directory.
func stageUnits(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for daemon, path := range units {
		stub := filepath.Join(dir, daemon)
		if err := os.WriteFile(stub, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		real := "ExecStart=/usr/local/bin/" + daemon + " "
		if !bytes.Contains(data, []byte("\n"+real)) {
			t.Fatalf("%s: no line starting with %q", path, real)
		}
		data = bytes.ReplaceAll(data, []byte(real), []byte("ExecStart="+stub+" "))
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(path)), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestSystemdAnalyzeVerify(t *testing.T) {
	analyze := tool(t, "systemd-analyze", "systemd")
	dir := stageUnits(t)
	for _, path := range units {
		t.Run(filepath.Base(path), func(t *testing.T) {
			out, err := run(t, dir, analyze, "verify", "--man=no", filepath.Join(dir, filepath.Base(path)))
			if err != nil {
				t.Fatalf("systemd-analyze verify %s: %v\n%s", path, err, out)
			}
			// verify exits 0 on settings it ignores ("Unknown key", "Failed
			// to parse ..., ignoring"): any output at all is a defect.
			if strings.TrimSpace(out) != "" {
				t.Fatalf("systemd-analyze verify %s complained:\n%s", path, out)
			}
		})
	}
}

func TestSystemdAnalyzeSecurity(t *testing.T) {
	analyze := tool(t, "systemd-analyze", "systemd")
	dir := stageUnits(t)
	for _, path := range units {
		t.Run(filepath.Base(path), func(t *testing.T) {
			// Exposure 2.5 or less (systemd calls up to 4.9 "OK"); the units
			// score 1.9 and 2.0 with systemd 252. A higher score means some
			// hardening was lost.
			out, err := run(t, dir, analyze, "security", "--offline=true", "--threshold=25", "--no-pager",
				filepath.Join(dir, filepath.Base(path)))
			if err != nil {
				t.Fatalf("systemd-analyze security %s: %v (exposure above 2.5?)\n%s", path, err, out)
			}
		})
	}
}

func TestUnitSettings(t *testing.T) {
	common := map[string]string{
		"Type":                    "notify",
		"NotifyAccess":            "main",
		"WatchdogSec":             "30s",
		"Restart":                 "on-failure",
		"RestartSec":              "2s",
		"User":                    "cutover",
		"Group":                   "cutover",
		"NoNewPrivileges":         "yes",
		"ProtectSystem":           "strict",
		"PrivateTmp":              "yes",
		"ProtectKernelTunables":   "yes",
		"ProtectKernelModules":    "yes",
		"ProtectControlGroups":    "yes",
		"RestrictSUIDSGID":        "yes",
		"LockPersonality":         "yes",
		"RestrictRealtime":        "yes",
		"SystemCallArchitectures": "native",
		"CapabilityBoundingSet":   "",
	}
	tests := []struct {
		daemon string
		want   map[string]string
	}{
		{"cutover-controller", map[string]string{
			"ExecStart":      "/usr/local/bin/cutover-controller --config /etc/cutover/controller.yaml",
			"StateDirectory": "cutover-controller",
			"ProtectHome":    "read-only", // source directories may live under /home
			"TimeoutStopSec": "60s",
			// SIGTERM to the controller alone; it cancels its builds' groups.
			"KillMode":           "mixed",
			"CacheDirectory":     "cutover-controller",
			"UMask":              "0027",
			"StateDirectoryMode": "0750",
		}},
		{"cutover-agent", map[string]string{
			"ExecStart":      "/usr/local/bin/cutover-agent --config /etc/cutover/agent.yaml",
			"StateDirectory": "cutover-agent",
			"ProtectHome":    "yes",
			"ReadWritePaths": "/srv/cutover",
			"TimeoutStopSec": "90s",
			// The apps outlive the agent; the next one adopts them.
			"KillMode":           "process",
			"UMask":              "0027",
			"StateDirectoryMode": "0750",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.daemon, func(t *testing.T) {
			s := unitSettings(t, units[tt.daemon])
			svc := s["Service"]
			for k, v := range common {
				tt.want[k] = v
			}
			for k, want := range tt.want {
				got, ok := svc[k]
				if !ok {
					t.Errorf("[Service] %s= is missing, want %q", k, want)
					continue
				}
				if len(got) != 1 || got[0] != want {
					t.Errorf("[Service] %s=%q, want %q", k, got, want)
				}
			}
			if got := s["Install"]["WantedBy"]; len(got) != 1 || got[0] != "multi-user.target" {
				t.Errorf("[Install] WantedBy=%q, want multi-user.target", got)
			}
		})
	}
}
