package main

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// fakeTerminal is a screen that understands what liveView writes: text,
// "\n", "\r", cursor up ("\x1b[<n>A"), clear line ("\x1b[2K") and clear to
// the end of the screen ("\x1b[J"). Anything else fails the test.
type fakeTerminal struct {
	t      *testing.T
	lines  []string
	row    int
	writes int
}

func (f *fakeTerminal) Write(p []byte) (int, error) {
	f.writes++
	s := string(p)
	for len(s) > 0 {
		for f.row >= len(f.lines) {
			f.lines = append(f.lines, "")
		}
		switch {
		case s[0] == '\n':
			f.row++
			s = s[1:]
		case s[0] == '\r':
			s = s[1:]
		case strings.HasPrefix(s, "\x1b[2K"):
			f.lines[f.row] = ""
			s = s[4:]
		case strings.HasPrefix(s, "\x1b[J"):
			f.lines = f.lines[:f.row+1]
			f.lines[f.row] = ""
			s = s[3:]
		case strings.HasPrefix(s, "\x1b["):
			var n int
			if _, err := fmt.Sscanf(s, "\x1b[%dA", &n); err != nil {
				f.t.Fatalf("unexpected escape in %q", s)
			}
			f.row -= n
			if f.row < 0 {
				f.t.Fatalf("cursor moved above the first line")
			}
			s = s[strings.IndexByte(s, 'A')+1:]
		default:
			i := strings.IndexAny(s, "\n\r\x1b")
			if i < 0 {
				i = len(s)
			}
			f.lines[f.row] += s[:i]
			s = s[i:]
		}
	}
	return len(p), nil
}

// screen is what the terminal shows, without the empty line under the cursor.
func (f *fakeTerminal) screen() string {
	return strings.TrimSuffix(strings.Join(f.lines, "\n"), "\n")
}

func agentAt(name string, st cutoverv1.AgentDeploymentState, got, total int64, errMsg string) *cutoverv1.DeploymentAgent {
	return &cutoverv1.DeploymentAgent{Name: name, State: st, TransferredBytes: got, ReleaseBytes: total, Error: errMsg}
}

func TestLiveView(t *testing.T) {
	const (
		mib      = 1 << 20
		staging  = cutoverv1.AgentDeploymentState_AGENT_DEPLOYMENT_STATE_STAGING
		staged   = cutoverv1.AgentDeploymentState_AGENT_DEPLOYMENT_STATE_STAGED
		failedSt = cutoverv1.AgentDeploymentState_AGENT_DEPLOYMENT_STATE_FAILED
	)
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	term := &fakeTerminal{t: t}
	v := &liveView{w: term}
	steps := []struct {
		at     time.Duration
		steps  []string
		agents []*cutoverv1.DeploymentAgent
		want   string
	}{
		{0, []string{"d-1  PREPARING: building hello"}, []*cutoverv1.DeploymentAgent{
			agentAt("fe-1", staging, 0, 8*mib, ""), agentAt("fe-2", staging, 0, 8*mib, "")},
			`d-1  PREPARING: building hello
  fe-1         STAGING     [------------------------]   0%  0 B of 8.0 MiB
  fe-2         STAGING     [------------------------]   0%  0 B of 8.0 MiB`},
		{time.Second, nil, []*cutoverv1.DeploymentAgent{
			agentAt("fe-1", staging, 2*mib, 8*mib, ""), agentAt("fe-2", staging, 4*mib, 8*mib, "")},
			`d-1  PREPARING: building hello
  fe-1         STAGING     [######------------------]  25%  2.0 MiB of 8.0 MiB  2.0 MiB/s
  fe-2         STAGING     [############------------]  50%  4.0 MiB of 8.0 MiB  4.0 MiB/s`},
		{2 * time.Second, []string{"d-1  agent fe-2 failed: disk full"}, []*cutoverv1.DeploymentAgent{
			agentAt("fe-1", staged, 8*mib, 8*mib, ""), agentAt("fe-2", failedSt, 4*mib, 8*mib, "disk full")},
			`d-1  PREPARING: building hello
d-1  agent fe-2 failed: disk full
  fe-1         STAGED      [########################] 100%  8.0 MiB of 8.0 MiB
  fe-2         FAILED      [############------------]  50%  4.0 MiB of 8.0 MiB  disk full`},
		{3 * time.Second, []string{"d-1  FAILED", "d-1  (stage 2 without fe-2)"}, []*cutoverv1.DeploymentAgent{
			agentAt("fe-1", staged, 8*mib, 8*mib, "")},
			`d-1  PREPARING: building hello
d-1  agent fe-2 failed: disk full
d-1  FAILED
d-1  (stage 2 without fe-2)
  fe-1         STAGED      [########################] 100%  8.0 MiB of 8.0 MiB`},
	}
	for i, s := range steps {
		d := &cutoverv1.Deployment{Id: "d-1", Agents: s.agents}
		if err := v.show(s.steps, d, t0.Add(s.at)); err != nil {
			t.Fatal(err)
		}
		if got := term.screen(); got != s.want {
			t.Errorf("step %d: screen\n%s\nwant\n%s", i, got, s.want)
		}
	}
	if term.writes != len(steps) {
		t.Errorf("%d writes for %d events: each redraw should be one write (no flicker)", term.writes, len(steps))
	}
}

func TestRate(t *testing.T) {
	t0 := time.Unix(0, 0)
	var r rate
	for i, s := range []struct {
		at    time.Duration
		bytes int64
		want  float64
	}{
		{0, 0, 0},
		{time.Second, 1000, 1000},
		{2 * time.Second, 3000, 1500},
		{4 * time.Second, 7000, 2000}, // the samples older than 3s go: (7000-1000)/3s
		{5 * time.Second, 100, 0},     // fewer bytes: a new transfer starts
		{6 * time.Second, 1100, 1000},
	} {
		if got := r.add(t0.Add(s.at), s.bytes); got != s.want {
			t.Errorf("sample %d: rate %v, want %v", i, got, s.want)
		}
	}
}

// TestFollowOnATerminal follows a deployment through the fake controller
// with stdout taken for a terminal: the steps are lines, the agents bars.
func TestFollowOnATerminal(t *testing.T) {
	addr := startFake(t, &fakeAdmin{})
	term := &fakeTerminal{t: t}
	c := &cli{conn: connFlags{controller: addr, caFile: fakeCAFile(addr)}, output: "table", stdout: term, stderr: &bytes.Buffer{},
		getenv: testEnv(map[string]string{"CUTOVER_TOKEN": testToken}), isTerminal: func(w io.Writer) bool { return w == term }}
	d := &cutoverv1.Deployment{Id: "d-final", State: cutoverv1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED,
		Agents: []*cutoverv1.DeploymentAgent{agentAt("fe-1", cutoverv1.AgentDeploymentState_AGENT_DEPLOYMENT_STATE_ACTIVE, 10, 100, "")}}
	if _, err := c.follow(t.Context(), d, cutoverv1.DeploymentState.Final, term); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(term.screen(), "\n")
	if len(lines) != 2 || !strings.HasSuffix(lines[0], "d-final  DEPLOYED") ||
		lines[1] != "  fe-1         ACTIVE      [########################] 100%  10 B of 100 B" {
		t.Errorf("screen:\n%s", term.screen())
	}
}

// TestYAMLOutput checks that -o yaml prints the JSON form's fields, under
// the same names, as block YAML, and keeps strings that look like other
// types strings.
func TestYAMLOutput(t *testing.T) {
	var out bytes.Buffer
	d := &cutoverv1.Deployment{Id: "d-1", Environment: "true", State: cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED,
		Applications: []*cutoverv1.DeploymentApplication{{Name: "hello", VersionLabel: "123"}},
		Agents:       []*cutoverv1.DeploymentAgent{{Name: "fe-1", ReleaseBytes: 2048}}}
	if err := writeYAML(&out, d); err != nil {
		t.Fatal(err)
	}
	want := `id: d-1
environment: "true"
applications:
  - name: hello
    version_label: "123"
state: DEPLOYMENT_STATE_PREPARED
agents:
  - name: fe-1
    release_bytes: "2048"
`
	if out.String() != want {
		t.Errorf("yaml:\n%s\nwant\n%s", out.String(), want)
	}
}

// TestHelp checks that every command explains itself with an example, and
// that shell completion is there.
func TestHelp(t *testing.T) {
	root := newRootCmd(&cli{})
	var walk func(cmd *cobra.Command)
	walk = func(cmd *cobra.Command) {
		if cmd.Hidden || cmd.Name() == "help" {
			return
		}
		if cmd.Short == "" {
			t.Errorf("%q has no Short help", cmd.CommandPath())
		}
		if cmd.Runnable() && cmd.Example == "" && !strings.HasPrefix(cmd.CommandPath(), "cutoverctl completion") {
			t.Errorf("%q has no example", cmd.CommandPath())
		}
		for _, sub := range cmd.Commands() {
			walk(sub)
		}
	}
	root.InitDefaultCompletionCmd()
	walk(root)
	for _, shell := range []string{"bash", "zsh", "fish"} {
		var out, errOut bytes.Buffer
		if code := run(t.Context(), []string{"completion", shell}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "cutoverctl") {
			t.Errorf("completion %s: exit %d, %d bytes, stderr %s", shell, code, out.Len(), errOut.String())
		}
	}
}
