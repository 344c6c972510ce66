package fleetbench

import (
	"math"
	"testing"
)

// TestF6 computes F6 from hand-made runs: agent 0 served 60 in the
// baseline, 20 intact then died (or went on corrupting 5); the others got
// what it did not send from elsewhere, plus any waste.
func TestF6(t *testing.T) {
	base := PeerPoint{Served: []float64{60, 10, 10}, Received: []int64{100, 100, 100}}
	for _, tc := range []struct {
		name                 string
		fault                PeerPoint
		owed, refetch, waste float64
	}{
		{name: "killed, no waste", fault: PeerPoint{Fault: Killed, Served: []float64{20, 10, 10}, FaultyGood: 22, Received: []int64{100, 100, 100}},
			owed: 40, refetch: 40},
		{name: "killed, a chunk fetched twice", fault: PeerPoint{Fault: Killed, Served: []float64{20, 10, 10}, FaultyGood: 20, Received: []int64{100, 104, 100}},
			owed: 40, refetch: 44},
		{name: "corrupting", fault: PeerPoint{Fault: Corrupting, Served: []float64{25, 10, 10}, FaultyGood: 20, Received: []int64{100, 100, 100}},
			owed: 40, refetch: 40, waste: 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &PeerResult{On: base}
			for _, c := range []struct {
				what      string
				got, want float64
			}{{"owed", r.Owed(tc.fault), tc.owed}, {"re-fetched", r.Refetched(tc.fault), tc.refetch}, {"wasted", Wasted(tc.fault), tc.waste}} {
				if math.Abs(c.got-c.want) > 1e-9 {
					t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
				}
			}
		})
	}
}
