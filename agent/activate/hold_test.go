package activate

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/pkg/errkind"
)

func TestHeldCommitWaitsForFinish(t *testing.T) {
	// An abort and the hold timeout both fail with Aborted: wantMsg tells
	// them apart, and only the timeout case has a short hold timeout, so
	// that an abort that went unheard fails rather than times out.
	cases := []struct {
		name    string
		tell    func(a *Activator) // before the wait starts (or from ready)
		early   bool
		timeout time.Duration
		wantErr error
		wantMsg string
	}{
		{"finish", func(a *Activator) { a.Finish(own("d-1"), false) }, false, time.Minute, nil, ""},
		{"abort", func(a *Activator) { a.Finish(own("d-1"), true) }, false, time.Minute, errkind.Aborted, "aborted the switch"},
		{"abort before the wait is kept", func(a *Activator) { a.Finish(own("d-1"), true) }, true, time.Minute, errkind.Aborted, "aborted the switch"},
		{"no word: timeout", func(*Activator) {}, false, 50 * time.Millisecond, errkind.Aborted, "no word from the controller"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := &Activator{cfg: Config{HoldTimeout: tc.timeout}}
			ch, unhold := a.holdSlot(own("d-1"))
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
			if tc.wantErr == nil && err != nil || tc.wantErr != nil && (!errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.wantMsg)) {
				t.Fatalf("waitFinish = %v, want %v (%q)", err, tc.wantErr, tc.wantMsg)
			}
		})
	}
	a := &Activator{cfg: Config{HoldTimeout: time.Minute}}
	if a.Finish(own("d-9"), false) {
		t.Error("Finish of a deployment with no commit said it was told")
	}
	ch, unhold := a.holdSlot(own("d-9"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := a.waitFinish(ctx, ch, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("waitFinish with a cancelled context = %v", err)
	}
	unhold()
	if a.Finish(own("d-9"), false) {
		t.Error("Finish after the commit ended said it was told")
	}
}
