package store

import "testing"

func TestAdmitEpoch(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		epoch   uint64
		ok      bool
		highest uint64
	}{
		{0, true, 0},  // an unelected controller, nothing seen
		{7, true, 7},  // a leader: recorded
		{7, true, 7},  // the same leader again
		{0, false, 7}, // an unelected controller after a leader
		{5, false, 7}, // an older leader
		{9, true, 9},  // a newer leader
	}
	for i, st := range steps {
		ok, highest, err := s.AdmitEpoch(st.epoch)
		if err != nil || ok != st.ok || highest != st.highest {
			t.Fatalf("step %d: AdmitEpoch(%d) = %v, %d, %v; want %v, %d", i, st.epoch, ok, highest, err, st.ok, st.highest)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// The highest epoch survives a restart.
	s, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if ok, highest, err := s.AdmitEpoch(8); err != nil || ok || highest != 9 {
		t.Fatalf("after reopening: AdmitEpoch(8) = %v, %d, %v; want false, 9", ok, highest, err)
	}
}
