package deploy_test

import (
	"flag"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cutover-dev/cutover/pkg/flagfile"
	"github.com/cutover-dev/cutover/pkg/logging"
)

// listFlag is a repeatable flag (--env, --label).
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

// flagsOf returns a flag set with the flags the daemon's public contract
// names (DESIGN.md, issue 5, and the trust issue's --source-root, --tls-san
// and --join-token-file), as strings, lists for the repeatable ones.
func flagsOf(daemon string) (*flag.FlagSet, map[string]*string, map[string]*listFlag) {
	names := map[string][]string{
		"cutover-controller": {"data-dir", "listen", "metrics-listen", "log-level", "log-format"},
		"cutover-agent":      {"controller", "environment", "name", "data-dir", "root", "metrics-listen", "log-level", "log-format", "join-token-file"},
	}
	repeatable := map[string][]string{"cutover-agent": {"env", "label"}, "cutover-controller": {"source-root", "tls-san"}}
	fs := flag.NewFlagSet(daemon, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.String(flagfile.ConfigFlag, "", "")
	strs, lists := map[string]*string{}, map[string]*listFlag{}
	for _, n := range names[daemon] {
		strs[n] = fs.String(n, "", "")
	}
	for _, n := range repeatable[daemon] {
		lists[n] = &listFlag{}
		fs.Var(lists[n], n, "")
	}
	return fs, strs, lists
}

// TestConfigFiles loads the example config files with pkg/flagfile, as the
// daemons do, and checks that they agree with the units: data-dir is the
// unit's StateDirectory, the agent's root is in its ReadWritePaths, its join
// token is under its StateDirectory or /etc/cutover, the controller's source
// roots are absolute and outside its data dir, and the log settings are
// accepted.
func TestConfigFiles(t *testing.T) {
	tests := []struct {
		daemon, file string
	}{
		{"cutover-controller", "config/controller.yaml"},
		{"cutover-agent", "config/agent.yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.daemon, func(t *testing.T) {
			fs, strs, lists := flagsOf(tt.daemon)
			if err := flagfile.Parse(fs, []string{"--config", tt.file}); err != nil {
				t.Fatal(err)
			}
			fs.VisitAll(func(f *flag.Flag) {
				// name defaults to the host name: the example leaves it out.
				if f.Name != flagfile.ConfigFlag && f.Name != "name" && f.Value.String() == "" {
					t.Errorf("%s does not set %q", tt.file, f.Name)
				}
			})
			if _, err := logging.New(io.Discard, *strs["log-format"], *strs["log-level"]); err != nil {
				t.Errorf("%s: %v", tt.file, err)
			}
			svc := unitSettings(t, units[tt.daemon])["Service"]
			if want := "/var/lib/" + svc["StateDirectory"][0]; *strs["data-dir"] != want {
				t.Errorf("%s: data-dir %q, want the unit's StateDirectory %q", tt.file, *strs["data-dir"], want)
			}
			if tt.daemon == "cutover-agent" {
				if !slices.Contains(strings.Fields(strings.Join(svc["ReadWritePaths"], " ")), filepath.Clean(*strs["root"])) {
					t.Errorf("%s: root %q is not in the unit's ReadWritePaths %q", tt.file, *strs["root"], svc["ReadWritePaths"])
				}
				jt := *strs["join-token-file"]
				if !strings.HasPrefix(jt, "/var/lib/"+svc["StateDirectory"][0]+"/") && !strings.HasPrefix(jt, "/etc/cutover/") {
					t.Errorf("%s: join-token-file %q is neither under the unit's StateDirectory nor /etc/cutover", tt.file, jt)
				}
				for _, kv := range append(*lists["env"], *lists["label"]...) {
					if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
						t.Errorf("%s: %q is not KEY=VALUE", tt.file, kv)
					}
				}
			}
			if tt.daemon == "cutover-controller" {
				for _, root := range *lists["source-root"] {
					if !filepath.IsAbs(root) || strings.HasPrefix(root, *strs["data-dir"]+"/") {
						t.Errorf("%s: source-root %q: want an absolute path outside the data dir", tt.file, root)
					}
				}
			}
		})
	}
}
