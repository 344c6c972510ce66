package journalkey

import "testing"

func TestPackUnpack(t *testing.T) {
	tests := []struct {
		key        string
		deployment string
		attempt    int
	}{
		{"d-7", "d-7", 0},
		{"d-7~rollback.12", "d-7", 12},
		{"d-7~rollback.1", "d-7", 1},
		{"", "", 0},
		// Not the packed form: kept whole.
		{"d-7~rollback.", "d-7~rollback.", 0},
		{"d-7~rollback.x", "d-7~rollback.x", 0},
		{"d-7~rollback.0", "d-7~rollback.0", 0},
		{"d-7~rollback.-3", "d-7~rollback.-3", 0},
		{"d-7~rollback.012", "d-7~rollback.012", 0},
	}
	for _, tt := range tests {
		id, n := Unpack(tt.key)
		if id != tt.deployment || n != tt.attempt {
			t.Errorf("Unpack(%q) = %q, %d; want %q, %d", tt.key, id, n, tt.deployment, tt.attempt)
		}
		if tt.key == Pack(tt.deployment, tt.attempt) {
			continue
		}
		if tt.attempt > 0 {
			t.Errorf("Pack(%q, %d) = %q, want %q", tt.deployment, tt.attempt, Pack(tt.deployment, tt.attempt), tt.key)
		}
	}
	if got := Pack("d-7", 0); got != "d-7" {
		t.Errorf("Pack(d-7, 0) = %q", got)
	}
}
