package fleet

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/controlplane/store"
)

// TestSwarmFor checks the groups of swarms of several sizes: in each
// group every slice has an owner; a member owns at most one slice; only
// group 0 fetches from the controller; an upstream owns the same slice in
// the group before (a binary tree); who waits for whom never loops.
func TestSwarmFor(t *testing.T) {
	for _, tc := range []struct {
		members    int
		wantSlices int // 0: no swarm
	}{
		{members: 1},
		{members: 2, wantSlices: 2},
		{members: 3, wantSlices: 3},
		{members: 16, wantSlices: 16},
		{members: 17, wantSlices: 8},
		{members: 50, wantSlices: 12},
		{members: 1000, wantSlices: 15},
	} {
		t.Run(fmt.Sprint(tc.members), func(t *testing.T) {
			v := &swarmView{index: map[string]int{}}
			for i := range tc.members {
				name := fmt.Sprintf("fe%04d", i)
				v.members, v.index[name] = append(v.members, name), i
			}
			parts := map[string]*Swarm{}
			for _, name := range v.members {
				w, reach := swarmFor(v, name)
				if tc.wantSlices == 0 {
					if w != nil {
						t.Fatalf("%s: a swarm of %d: %+v", name, tc.members, w)
					}
					continue
				}
				if w.Slices != tc.wantSlices || len(w.Owners) != w.Slices {
					t.Fatalf("%s: %d slices, %d owners; want %d", name, w.Slices, len(w.Owners), tc.wantSlices)
				}
				for k, o := range w.Owners {
					if o != "" && !slices.Contains(reach, o) {
						t.Errorf("%s: owner %s of slice %d is not among the peers to reach", name, o, k)
					}
					if o == name {
						t.Errorf("%s owns slice %d and is its own owner", name, k)
					}
				}
				parts[name] = w
			}
			if tc.wantSlices == 0 {
				return
			}
			// Everyone's owner of slice k owns slice k; following
			// upstreams ends at the controller.
			controllerSent := map[int]int{}
			for name, w := range parts {
				for k, o := range w.Owners {
					if o != "" && parts[o].Slice != k {
						t.Errorf("%s asks %s for slice %d, which owns %d", name, o, k, parts[o].Slice)
					}
				}
				if w.Slice < 0 {
					continue
				}
				hops, at := 0, name
				for parts[at].Owners[w.Slice] != "" {
					if at = parts[at].Owners[w.Slice]; hops > tc.members {
						t.Fatalf("%s: the upstreams of slice %d loop", name, w.Slice)
					}
					hops++
				}
				if at == name {
					controllerSent[w.Slice]++
				}
			}
			for k := range tc.wantSlices {
				if controllerSent[k] != 1 {
					t.Errorf("slice %d is fetched from the controller by %d agents, want 1", k, controllerSent[k])
				}
			}
			// Not a member: every slice from one group's owners.
			w, reach := swarmFor(v, "late")
			if w.Slice != -1 || len(reach) != w.Slices || slices.Contains(w.Owners, "") {
				t.Errorf("a late agent's part: %+v (reach %v)", w, reach)
			}
		})
	}
}

// TestSendAllMakesOneSwarm sends a stage fan-out at once: every agent
// that serves peers is a member, each names the owners of its slices
// among its peers; one that serves none takes part without a slice; a
// later command of the deployment joins the same swarm.
func TestSendAllMakesOneSwarm(t *testing.T) {
	f, st := newFleet(t)
	putEnv(t, st, "prod", false)
	next := func(t *testing.T, s *Session) Command {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := f.Next(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	names := []string{"fe1", "fe2", "fe3", "fe4"}
	sessions := map[string]*Session{}
	for _, n := range append(slices.Clone(names), "nopeer") {
		h := Hello{Name: n, Environment: "prod", PeerAddress: "10.0.0.1:7071"}
		if n == "nopeer" {
			h.PeerAddress = ""
		}
		s, err := f.Connect(h)
		if err != nil {
			t.Fatal(err)
		}
		sessions[n] = s
	}
	rel := []ReleaseRef{{"hello", "r1"}}
	var out []Outgoing
	for _, n := range append(slices.Clone(names), "nopeer") {
		out = append(out, Outgoing{Agent: n, Command: Command{Kind: Stage, ID: "stage-" + n, DeploymentID: "d-1", Releases: rel}})
	}
	f.SendAll(out)
	owned := map[int]string{}
	for _, n := range append(slices.Clone(names), "nopeer") {
		c := next(t, sessions[n])
		if c.Swarm == nil || c.Swarm.Slices != len(names) {
			t.Fatalf("%s: swarm %+v, want %d slices", n, c.Swarm, len(names))
		}
		var peers []string
		for _, p := range c.Peers {
			peers = append(peers, p.Name)
		}
		for k, o := range c.Swarm.Owners {
			if o != "" && !slices.Contains(peers, o) {
				t.Errorf("%s: owner %s of slice %d not among its peers %v", n, o, k, peers)
			}
		}
		if n == "nopeer" {
			if c.Swarm.Slice != -1 {
				t.Errorf("an agent that serves no peers owns slice %d", c.Swarm.Slice)
			}
			continue
		}
		if prev, dup := owned[c.Swarm.Slice]; dup {
			t.Errorf("%s and %s both own slice %d", prev, n, c.Swarm.Slice)
		}
		owned[c.Swarm.Slice] = n
	}
	f.Send("fe1", Command{Kind: Stage, ID: "stage-fe1-again", DeploymentID: "d-1", Releases: rel})
	if c := next(t, sessions["fe1"]); c.Swarm == nil || owned[c.Swarm.Slice] != "fe1" {
		t.Errorf("fe1's later command: swarm %+v, want the slice it owned", c.Swarm)
	}
}

// putEnv records environment name, with peers turned off if disabled.
func putEnv(t *testing.T, st model.Store, name string, disabled bool) {
	t.Helper()
	if err := st.Update(func(tx model.Tx) error {
		return tx.PutEnvironment(&model.Environment{Name: name, PeersDisabled: disabled})
	}); err != nil {
		t.Fatal(err)
	}
}

// TestPeersSettingIsKeptTwoSeconds: the environment's peers_disabled is
// read once for the commands of the next 2 s, then read again.
func TestPeersSettingIsKeptTwoSeconds(t *testing.T) {
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	now := time.Date(2026, 12, 7, 22, 0, 0, 0, time.UTC)
	f, err := New(Config{Store: st, Clock: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		after    time.Duration
		disabled bool // set before the step
		want     bool
	}{
		{disabled: true, want: false},
		{after: time.Second, disabled: false, want: false}, // changed, not read again yet
		{after: 2 * time.Second, disabled: false, want: true},
		{after: 2 * time.Second, disabled: true, want: false},
	} {
		now = now.Add(step.after)
		putEnv(t, st, "prod", step.disabled)
		if got := f.peersAllowed("prod"); got != step.want {
			t.Fatalf("at +%s (peers_disabled %v): allowed = %v, want %v", step.after, step.disabled, got, step.want)
		}
	}
}

// BenchmarkPeersFor10000 is what one stage command's peers and swarm
// part cost the controller with 10,000 connected agents that serve peers
// and stage the same release (the swarm's membership is made once per
// deployment, by the first command).
func BenchmarkPeersFor10000(b *testing.B) {
	f, _ := newFleet(b)
	rel := []ReleaseRef{{"hello", "r1"}}
	cmd := Command{Kind: Stage, ID: "s", DeploymentID: "d-1", Releases: rel}
	for i := range 10000 {
		name := fmt.Sprintf("fe%05d", i)
		s := newSession(model.Agent{Name: name, Environment: "prod", Labels: map[string]string{ZoneLabel: fmt.Sprint(i % 3)}})
		s.peerAddress = "10.0.0.1:7071"
		f.sessions[name] = s
		f.outstanding[name] = []Command{cmd}
	}
	me := f.sessions["fe05000"]
	f.peersFor(me, cmd) // the membership, once
	b.ResetTimer()
	for b.Loop() {
		if peers, w := f.peersFor(me, cmd); w == nil || len(peers) == 0 {
			b.Fatal("no swarm")
		}
	}
}
