package deployment

import (
	"testing"
	"time"

	"github.com/cutover-dev/cutover/controlplane/model"
)

// The predicates pages ask before they show a button answer as the
// requests' own checks do.
func TestCan(t *testing.T) {
	now := time.Date(2030, 1, 7, 12, 0, 0, 0, time.UTC)
	planned := &model.Deployment{ID: "d-1", State: model.Planned,
		History: []model.Transition{{State: model.Planned, Actor: "dora"}}}
	prepared := &model.Deployment{ID: "d-2", State: model.Prepared, ExpireTime: now.Add(time.Hour)}
	expired := &model.Deployment{ID: "d-3", State: model.Prepared, ExpireTime: now}
	scheduled := &model.Deployment{ID: "d-4", State: model.Prepared, ExpireTime: now.Add(time.Hour), ScheduledTime: now.Add(time.Minute)}
	approved := &model.Deployment{ID: "d-5", State: model.Prepared, ExpireTime: now.Add(time.Hour), Approval: &model.Approval{Actor: "abe"}}
	deployed := &model.Deployment{ID: "d-6", State: model.Deployed}
	two := &model.Environment{Name: "demo", TwoStage: true, RequireApproval: true}
	one := &model.Environment{Name: "demo"}
	for _, tt := range []struct {
		name string
		got  bool
		want bool
	}{
		{"prepare planned, two stages", CanPrepare(planned, two) == nil, true},
		{"prepare planned, one stage", CanPrepare(planned, one) == nil, false},
		{"prepare prepared", CanPrepare(prepared, two) == nil, false},
		{"start planned", CanStart(planned) == nil, true},
		{"start prepared", CanStart(prepared) == nil, false},
		{"continue prepared", CanContinue(prepared, now) == nil, true},
		{"continue expired", CanContinue(expired, now) == nil, false},
		{"continue planned", CanContinue(planned, now) == nil, false},
		{"needs approval", NeedsApproval(prepared, two), true},
		{"needs approval, approved", NeedsApproval(approved, two), false},
		{"needs approval, not required", NeedsApproval(prepared, one), false},
		{"approve by another", CanApprove(planned, "abe") == nil, true},
		{"approve by its creator", CanApprove(planned, "dora") == nil, false},
		{"approve approved", CanApprove(approved, "abe") == nil, false},
		{"approve deployed", CanApprove(deployed, "abe") == nil, false},
		{"abort prepared", CanAbort(prepared) == nil, true},
		{"abort deployed", CanAbort(deployed) == nil, false},
		{"extend prepared", CanExtend(prepared, now) == nil, true},
		{"extend expired", CanExtend(expired, now) == nil, false},
		{"extend planned", CanExtend(planned, now) == nil, false},
		{"cancel schedule, scheduled", CanCancelSchedule(scheduled) == nil, true},
		{"cancel schedule, not scheduled", CanCancelSchedule(prepared) == nil, false},
	} {
		if tt.got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, tt.got, tt.want)
		}
	}
}
