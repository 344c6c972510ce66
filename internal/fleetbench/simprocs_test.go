package fleetbench

import "testing"

func TestSimProcesses(t *testing.T) {
	for _, tc := range []struct{ n, per, want int }{
		{10, 0, 0},
		{5000, 0, 0},
		{5001, 0, 2},
		{10000, 0, 2},
		{10001, 0, 3},
		{10, 4, 3},
		{4, 4, 0},
		{8, 4, 2},
	} {
		if got := simProcesses(tc.n, tc.per); got != tc.want {
			t.Errorf("simProcesses(%d, %d) = %d, want %d", tc.n, tc.per, got, tc.want)
		}
	}
}
