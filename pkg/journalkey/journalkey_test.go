package journalkey

import "testing"

func TestKeys(t *testing.T) {
	tests := []struct {
		key        string
		deployment string
		rollback   bool
	}{
		{"d-7", "d-7", false},
		{Rollback("d-7", 12), "d-7", true},
		{"d-7~rollback.12", "d-7", true},
		{"", "", false},
	}
	for _, tt := range tests {
		if got := Deployment(tt.key); got != tt.deployment {
			t.Errorf("Deployment(%q) = %q, want %q", tt.key, got, tt.deployment)
		}
		got, ok := RollsBack(tt.key)
		if ok != tt.rollback || (ok && got != tt.deployment) {
			t.Errorf("RollsBack(%q) = %q, %v; want %q, %v", tt.key, got, ok, tt.deployment, tt.rollback)
		}
	}
	if got := Rollback("d-7", 12); got != "d-7~rollback.12" {
		t.Errorf("Rollback(d-7, 12) = %q", got)
	}
}
