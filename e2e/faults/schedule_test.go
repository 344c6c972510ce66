package faults

import (
	"reflect"
	"testing"
)

// TestNewPlanIsReplayable: the same seed draws the same plan; another seed
// another one; every kind is drawn from the given ones.
func TestNewPlanIsReplayable(t *testing.T) {
	a, b := NewPlan(42, AllKinds, 3, 3, 6), NewPlan(42, AllKinds, 3, 3, 6)
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("seed 42 drew two plans:\n%s\n%s", a, b)
	}
	if c := NewPlan(43, AllKinds, 3, 3, 6); reflect.DeepEqual(a, c) {
		t.Errorf("seeds 42 and 43 drew the same plan:\n%s", a)
	}
	for seed := range uint64(200) {
		p := NewPlan(seed, []Kind{CutNetwork, KillAgent}, 3, 3, 6)
		if len(p.Steps) < 1 || len(p.Steps) > 3 || len(p.Faults) < 2 || len(p.Faults) > 6 {
			t.Fatalf("seed %d: %d steps, %d faults:\n%s", seed, len(p.Steps), len(p.Faults), p)
		}
		for i, f := range p.Faults {
			if f.Kind != CutNetwork && f.Kind != KillAgent || f.Agent < 0 || f.Agent > 2 || f.Step >= len(p.Steps) {
				t.Fatalf("seed %d drew %s", seed, f)
			}
			if f.Phase != Stage1 && p.Steps[f.Step].PrepareOnly || f.Phase == Rollback && !p.Steps[f.Step].Rollback {
				t.Fatalf("seed %d: %s follows a phase its deployment does not have:\n%s", seed, f, p)
			}
			if i > 0 && f.Step < p.Faults[i-1].Step {
				t.Fatalf("seed %d: faults out of order:\n%s", seed, p)
			}
		}
	}
}

func TestParseKinds(t *testing.T) {
	if k, err := ParseKinds("all"); err != nil || len(k) != len(AllKinds) {
		t.Errorf("all: %v %v", k, err)
	}
	if k, err := ParseKinds("kill-agent, cut-network"); err != nil || len(k) != 2 {
		t.Errorf("two kinds: %v %v", k, err)
	}
	if _, err := ParseKinds("kill-everything"); err == nil {
		t.Error("an unknown kind was accepted")
	}
}
