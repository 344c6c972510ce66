package stage

import (
	"errors"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/pkg/manifest"
)

func TestArrivals(t *testing.T) {
	held, coming, never := manifest.ChunkID{1}, manifest.ChunkID{2}, manifest.ChunkID{3}
	boom := errors.New("fetch failed")
	tests := []struct {
		name      string
		id        manifest.ChunkID
		commit    bool  // the fetch commits coming
		end       error // then ends with this
		wantFresh bool
		wantErr   error
	}{
		{"held already: at once", held, false, nil, false, nil},
		{"committed by the fetch", coming, true, nil, true, nil},
		{"fetch ended without it (found in the store meanwhile)", coming, false, nil, false, nil},
		{"fetch failed before it came", never, false, boom, false, boom},
		{"fetch failed after it came", coming, true, boom, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newArrivals([]manifest.ChunkID{coming, never})
			type result struct {
				fresh bool
				err   error
			}
			got := make(chan result, 1)
			go func() {
				f, err := a.wait(tt.id)
				got <- result{f, err}
			}()
			if tt.id != held {
				select {
				case r := <-got:
					t.Fatalf("wait returned %+v before the fetch said anything", r)
				case <-time.After(20 * time.Millisecond): // only proves it did not return early
				}
			}
			if tt.commit {
				a.committed([]Received{{ID: coming}})
			}
			a.end(tt.end)
			r := <-got
			if r.fresh != tt.wantFresh || !errors.Is(r.err, tt.wantErr) || (tt.wantErr == nil) != (r.err == nil) {
				t.Errorf("wait = %v, %v; want %v, %v", r.fresh, r.err, tt.wantFresh, tt.wantErr)
			}
		})
	}
	var none *arrivals
	if f, err := none.wait(held); f || err != nil {
		t.Errorf("nil arrivals: wait = %v, %v", f, err)
	}
}
