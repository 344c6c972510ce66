package activate

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/pkg/errkind"
)

func TestHeldCommitWaitsForFinish(t *testing.T) {
	cases := []struct {
		name    string
		tell    func(a *Activator) // before the wait starts (or from ready)
		early   bool
		wantErr error
	}{
		{"finish", func(a *Activator) { a.Finish("d-1", false) }, false, nil},
		{"abort", func(a *Activator) { a.Finish("d-1", true) }, false, errkind.Aborted},
		{"abort before the wait is kept", func(a *Activator) { a.Finish("d-1", true) }, true, errkind.Aborted},
		{"no word: timeout", func(*Activator) {}, false, errkind.Aborted},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := &Activator{cfg: Config{HoldTimeout: 50 * time.Millisecond}}
			ch, unhold := a.holdSlot("d-1")
			defer unhold()
			if tc.early {
				tc.tell(a)
			}
			readies := 0
			err := a.waitFinish(context.Background(), ch, func() {
				readies++
				if !tc.early {
					tc.tell(a)
				}
			})
			if readies == 0 {
				t.Error("ready was never called")
			}
			if tc.wantErr == nil && err != nil || tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("waitFinish = %v, want %v", err, tc.wantErr)
			}
		})
	}
	a := &Activator{cfg: Config{HoldTimeout: time.Minute}}
	if a.Finish("d-9", false) {
		t.Error("Finish of a deployment with no commit said it was told")
	}
	ch, unhold := a.holdSlot("d-9")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := a.waitFinish(ctx, ch, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("waitFinish with a cancelled context = %v", err)
	}
	unhold()
	if a.Finish("d-9", false) {
		t.Error("Finish after the commit ended said it was told")
	}
}
