package fleet

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/controlplane/model"
)

func TestStageCommandsNamePeers(t *testing.T) {
	f, st := newFleet(t)
	putEnv(t, st, "prod", false)
	putEnv(t, st, "staging", false)
	putEnv(t, st, "quiet", true)
	held := []model.AgentApplication{{Name: "hello", StagedReleaseIDs: []string{"r2"}}}
	for _, h := range []Hello{
		{Name: "fe1", Environment: "prod", Labels: map[string]string{"zone": "a"}, PeerAddress: "10.0.0.1:7071"},
		{Name: "fe2", Environment: "prod", Labels: map[string]string{"zone": "b"}, PeerAddress: "10.0.0.2:7071"},
		{Name: "fe3", Environment: "prod", Labels: map[string]string{"zone": "a"}, PeerAddress: "10.0.0.3:7071"},
		{Name: "fe4", Environment: "prod", Labels: map[string]string{"zone": "b"}, PeerAddress: "10.0.0.4:7071", Applications: held},
		{Name: "fe5", Environment: "prod", Labels: map[string]string{"zone": "a"}},                                  // serves no peers
		{Name: "st1", Environment: "staging", Labels: map[string]string{"zone": "a"}, PeerAddress: "10.0.1.1:7071"}, // another environment
		{Name: "q1", Environment: "quiet", PeerAddress: "10.0.2.1:7071"},                                            // peers off
		{Name: "q2", Environment: "quiet", PeerAddress: "10.0.2.2:7071"},
	} {
		if _, err := f.Connect(h); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		agent    string
		releases []ReleaseRef
		kind     CommandKind
		want     []string
	}{
		// fe4 holds r2 whole: first; then fe1's zone; then the rest.
		{agent: "fe1", releases: []ReleaseRef{{"hello", "r2"}}, kind: Stage, want: []string{"fe4", "fe3", "fe2"}},
		{agent: "fe2", releases: []ReleaseRef{{"hello", "r2"}}, kind: Stage, want: []string{"fe4", "fe1", "fe3"}},
		// Nobody holds r3: the zone decides.
		{agent: "fe2", releases: []ReleaseRef{{"hello", "r3"}}, kind: Stage, want: []string{"fe4", "fe1", "fe3"}},
		{agent: "fe5", releases: []ReleaseRef{{"hello", "r3"}}, kind: Stage, want: []string{"fe1", "fe3", "fe2", "fe4"}},
		{agent: "st1", releases: []ReleaseRef{{"hello", "r2"}}, kind: Stage, want: nil},
		// The environment turned peers off: none, though q2 serves.
		{agent: "q1", releases: []ReleaseRef{{"hello", "r3"}}, kind: Stage, want: nil},
		{agent: "fe1", releases: []ReleaseRef{{"hello", "r2"}}, kind: Drop, want: nil},
		// Arm stages what an agent lacks: the same peers, no swarm.
		{agent: "fe2", releases: []ReleaseRef{{"hello", "r2"}}, kind: Arm, want: []string{"fe4", "fe1", "fe3"}},
	} {
		t.Run(fmt.Sprintf("%s %s %s", tc.agent, tc.kind, tc.releases[0].ReleaseID), func(t *testing.T) {
			f.Send(tc.agent, Command{Kind: tc.kind, ID: "c-" + tc.agent, DeploymentID: "d-1", Releases: tc.releases})
			f.mu.Lock()
			s := f.sessions[tc.agent]
			f.mu.Unlock()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			c, err := f.Next(ctx, s)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range c.Peers {
				got = append(got, p.Name)
				if p.Holds != (p.Name == "fe4" && tc.releases[0].ReleaseID == "r2") {
					t.Errorf("%s holds = %v", p.Name, p.Holds)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("peers = %v, want %v", got, tc.want)
			}
		})
	}
}
