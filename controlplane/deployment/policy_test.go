package deployment

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/pkg/errkind"
	"github.com/cutover-dev/cutover/pkg/window"
)

func utcTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestContinueOptionsValidate(t *testing.T) {
	tests := []struct {
		opt  ContinueOptions
		want string
	}{
		{ContinueOptions{}, ""},
		{ContinueOptions{Force: true, ForceReason: "hotfix"}, ""},
		{ContinueOptions{AtWindow: true}, ""},
		{ContinueOptions{Force: true}, "force needs a reason"},
		{ContinueOptions{Force: true, ForceReason: "  "}, "force needs a reason"},
		{ContinueOptions{ForceReason: "x"}, "only meaningful with force"},
		{ContinueOptions{Force: true, ForceReason: "x", AtWindow: true}, "choose one"},
	}
	for _, tt := range tests {
		err := tt.opt.validate()
		if (tt.want == "") != (err == nil) || (err != nil && (!errors.Is(err, errkind.InvalidArgument) || !strings.Contains(err.Error(), tt.want))) {
			t.Errorf("%+v: err = %v, want %q", tt.opt, err, tt.want)
		}
	}
}

func TestFirstFit(t *testing.T) {
	sched := func(ws ...string) window.Schedule {
		s, err := window.ParseAll(ws)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	// A 3-minute window is too short for 5 minutes; the next long one is 03:00.
	short := sched("Mon-Sun 02:00-02:03 UTC", "Mon-Sun 03:00-04:00 UTC")
	o, ok := firstFit(short, utcTime("2026-03-01T01:00:00Z"), 5*time.Minute)
	if !ok || !o.Open.Equal(utcTime("2026-03-01T03:00:00Z")) {
		t.Errorf("firstFit = %v, %v", o.Open, ok)
	}
	if _, ok := firstFit(sched("Mon 02:00-02:03 UTC"), t0, 5*time.Minute); ok {
		t.Error("firstFit found a window long enough where none is")
	}
}

func TestCheckWindow(t *testing.T) {
	d := &model.Deployment{ID: "d-4", State: model.Prepared}
	lisbon := &model.Environment{Name: "prod", Windows: []string{"Mon-Sun 02:00-04:00 Europe/Lisbon"}}
	midnight := &model.Environment{Name: "prod", Windows: []string{"Sat,Sun 22:00-01:00 UTC"}}
	force := ContinueOptions{Force: true, ForceReason: "hotfix for INC-7"}
	tests := []struct {
		name string
		env  *model.Environment
		now  string
		opt  ContinueOptions
		err  []string // parts of the refusal; nil: allowed
		note string   // part of what is recorded
	}{
		{"no windows: always", &model.Environment{Name: "prod"}, "2026-03-01T12:00:00Z", ContinueOptions{}, nil, ""},
		{"inside, winter (WET = UTC)", lisbon, "2026-03-28T02:30:00Z", ContinueOptions{}, nil, ""},
		{"before, winter", lisbon, "2026-03-28T01:30:00Z", ContinueOptions{}, []string{
			"no deployment window of environment prod is open now (2026-03-28T01:30:00Z)",
			`the next opens Sat 2026-03-28 02:00 WET (2026-03-28 02:00 UTC), window "Mon-Sun 02:00-04:00 Europe/Lisbon"`,
			"cutoverctl deploy continue d-4 --at-window", "--force", "deployment d-4 stays PREPARED"}, ""},
		// Summer time starts on 2026-03-29 at 01:00 UTC: 02:00 local is 01:00 UTC from then on.
		{"DST day, before the opening", lisbon, "2026-03-29T00:30:00Z", ContinueOptions{}, []string{
			"the next opens Sun 2026-03-29 02:00 WEST (2026-03-29 01:00 UTC)"}, ""},
		{"after DST: 01:30 UTC is 02:30 WEST, inside", lisbon, "2026-03-30T01:30:00Z", ContinueOptions{}, nil, ""},
		{"after DST: 03:30 UTC is 04:30 WEST, outside", lisbon, "2026-03-30T03:30:00Z", ContinueOptions{}, []string{
			"the next opens Tue 2026-03-31 02:00 WEST (2026-03-31 01:00 UTC)"}, ""},
		{"across midnight, Sunday 00:30 (Saturday's window)", midnight, "2026-03-01T00:30:00Z", ContinueOptions{}, nil, ""},
		{"across midnight, Monday 00:30 (Sunday's window)", midnight, "2026-03-02T00:30:00Z", ContinueOptions{}, nil, ""},
		{"across midnight, Monday 01:30: closed", midnight, "2026-03-02T01:30:00Z", ContinueOptions{}, []string{
			"the next opens Sat 2026-03-07 22:00 UTC (2026-03-07 22:00 UTC)"}, ""},
		{"forced outside", midnight, "2026-03-02T01:30:00Z", force, nil, "forced outside the deployment windows (Sat,Sun 22:00-01:00 UTC): hotfix for INC-7"},
		{"forced inside", midnight, "2026-03-02T00:30:00Z", force, nil, "though a deployment window was open anyway"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			forced, err := checkWindow(d, tt.env, utcTime(tt.now), tt.opt, "continue")
			if tt.err == nil {
				if err != nil || !strings.Contains(forced, tt.note) || (tt.note == "") != (forced == "") {
					t.Fatalf("err = %v, note %q, want nil and %q", err, forced, tt.note)
				}
				return
			}
			if !errors.Is(err, errkind.FailedPrecondition) {
				t.Fatalf("err = %v, want FailedPrecondition", err)
			}
			for _, part := range tt.err {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("err = %v\nlacks %q", err, part)
				}
			}
		})
	}
}

func TestExpiry(t *testing.T) {
	d := &model.Deployment{ID: "d-9", State: model.Prepared, PreparedTime: t0, ExpireTime: t0.Add(96 * time.Hour), PreparedTTL: 96 * time.Hour}
	if expired(d, t0.Add(96*time.Hour-time.Nanosecond)) || !expired(d, t0.Add(96*time.Hour)) {
		t.Error("expired() is wrong around the expire time")
	}
	err := expiredError(d)
	if want := "deployment d-9 expired at 2026-03-05T02:00:00Z (prepared_ttl 96h); prepare it again"; err.Error() != want || !errors.Is(err, errkind.FailedPrecondition) {
		t.Errorf("expiredError = %q, want %q", err, want)
	}
	if err := checkContinue(d, &model.Environment{}, t0.Add(100*time.Hour)); err == nil || err.Error() != expiredError(d).Error() {
		t.Errorf("checkContinue after expiry = %v", err)
	}
	old := &model.Deployment{ID: "d-1", State: model.Expired, PreparedTime: t0, ExpireTime: t0.Add(2 * time.Second)}
	if err := checkContinue(old, &model.Environment{}, t0); err == nil || err.Error() != "deployment d-1 expired at 2026-03-01T02:00:02Z (prepared_ttl 2s); prepare it again" {
		t.Errorf("checkContinue(EXPIRED) = %v", err)
	}
	for in, want := range map[time.Duration]string{96 * time.Hour: "96h", 90 * time.Minute: "1h30m", 2 * time.Second: "2s", time.Hour + time.Second: "1h0m1s", 5 * time.Minute: "5m"} {
		if got := FormatTTL(in); got != want {
			t.Errorf("FormatTTL(%v) = %q, want %q", in, got, want)
		}
	}
	tests := []struct {
		name string
		d    *model.Deployment
		by   time.Duration
		now  time.Time
		want string
	}{
		{"ok", d, 24 * time.Hour, t0, ""},
		{"not positive", d, 0, t0, "positive duration"},
		{"expired", d, time.Hour, t0.Add(97 * time.Hour), "expired at"},
		{"planned", &model.Deployment{ID: "d-2", State: model.Planned}, time.Hour, t0, "only a PREPARED deployment can be extended"},
	}
	for _, tt := range tests {
		err := checkExtend(tt.d, tt.by, tt.now)
		if (tt.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.want)
		}
	}
}

func TestApprovalChecks(t *testing.T) {
	env := &model.Environment{Name: "prod", RequireApproval: true}
	d := &model.Deployment{ID: "d-5", State: model.Prepared, History: []model.Transition{
		{State: model.Planned, Actor: "alice"}, {State: model.Preparing, Actor: "carol"}, {State: model.Prepared, Actor: "controller"}}}
	for _, own := range []string{"alice", "carol"} {
		if err := checkApprove(d, own); !errors.Is(err, errkind.PermissionDenied) {
			t.Errorf("%s approves what they created or prepared: %v", own, err)
		}
	}
	if err := checkApproval(d, env); !errors.Is(err, errkind.FailedPrecondition) || !strings.Contains(err.Error(), "cutoverctl deploy approve d-5") {
		t.Errorf("unapproved: %v", err)
	}
	if err := checkApproval(d, &model.Environment{Name: "prod"}); err != nil {
		t.Errorf("environment without require_approval: %v", err)
	}
	if err := checkApprove(d, "bob"); err != nil {
		t.Errorf("approve a prepared one: %v", err)
	}
	d.Approval = &model.Approval{Actor: "bob", Time: t0}
	if err := checkApproval(d, env); err != nil {
		t.Errorf("approved: %v", err)
	}
	if err := checkApprove(d, "bob"); err == nil || !strings.Contains(err.Error(), "approved already by bob") {
		t.Errorf("approve twice: %v", err)
	}
	if err := checkApprove(&model.Deployment{ID: "d-6", State: model.Deployed}, "bob"); err == nil || !strings.Contains(err.Error(), "is DEPLOYED") {
		t.Errorf("approve a deployed one: %v", err)
	}
}

func TestScheduleAt(t *testing.T) {
	d := &model.Deployment{ID: "d-7", State: model.Prepared, ExpireTime: utcTime("2026-03-05T00:00:00Z")}
	env := &model.Environment{Name: "prod", Windows: []string{"Mon-Fri 02:00-04:00 UTC"}}
	tests := []struct {
		name string
		env  *model.Environment
		now  string
		at   string
		err  string
	}{
		{"next opening (Sunday → Monday)", env, "2026-03-01T12:00:00Z", "2026-03-02T02:00:00Z", ""},
		{"open now", env, "2026-03-02T03:00:00Z", "2026-03-02T03:00:00Z", ""},
		{"no windows", &model.Environment{Name: "prod"}, "2026-03-01T12:00:00Z", "", "has no deployment windows"},
		{"opens after the expiry", env, "2026-03-04T12:00:00Z", "", "after deployment d-7 expires (2026-03-05T00:00:00Z): extend it first"},
	}
	for _, tt := range tests {
		at, _, err := scheduleAt(d, tt.env, utcTime(tt.now))
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: err = %v, want %q", tt.name, err, tt.err)
			}
			continue
		}
		if err != nil || !at.Equal(utcTime(tt.at)) {
			t.Errorf("%s: %v, %v; want %s", tt.name, at, err, tt.at)
		}
	}
}

func TestDecideScheduled(t *testing.T) {
	env := &model.Environment{Name: "prod", Windows: []string{"Mon-Sun 02:00-02:03 UTC", "Mon-Sun 03:00-04:00 UTC"}}
	d := func(pred time.Duration) *model.Deployment {
		return &model.Deployment{ID: "d-8", State: model.Prepared, PredictedStage2: pred, ExpireTime: utcTime("2026-03-10T00:00:00Z")}
	}
	tests := []struct {
		name       string
		d          *model.Deployment
		env        *model.Environment
		now        string
		problems   string
		start      bool
		reschedule string
		reason     []string
	}{
		{"fits", d(time.Minute), env, "2026-03-01T02:00:00Z", "", true, "", nil},
		{"too short: next long window", d(5 * time.Minute), env, "2026-03-01T02:00:00Z", "", false, "2026-03-01T03:00:00Z",
			[]string{"predicted duration 5m0s would end at 2026-03-01T02:05:00Z, after the window closes at 2026-03-01T02:03:00Z", "rescheduled for Sun 2026-03-01 03:00 UTC"}},
		{"window missed (controller was down)", d(time.Minute), env, "2026-03-01T05:00:00Z", "", false, "2026-03-02T02:00:00Z",
			[]string{"no deployment window is open at 2026-03-01T05:00:00Z"}},
		{"agents not ready: retry in the window", d(time.Minute), env, "2026-03-01T03:00:00Z", "agent fe2 is not connected", false, "2026-03-01T03:00:30Z",
			[]string{"it cannot start: agent fe2 is not connected; retrying every 30s"}},
		{"agents not ready, no room left: next window", d(time.Minute), env, "2026-03-01T03:59:00Z", "agent fe2 is not connected", false, "2026-03-02T02:00:00Z",
			[]string{"it cannot start: agent fe2 is not connected; rescheduled for Mon 2026-03-02 02:00 UTC"}},
		{"no window long enough", d(2 * time.Hour), env, "2026-03-01T03:00:00Z", "", false, "",
			[]string{"no deployment window in the next 192h is long enough", "the schedule is cancelled"}},
		{"needs approval", d(time.Minute), &model.Environment{Name: "prod", RequireApproval: true}, "2026-03-01T03:00:00Z", "", false, "",
			[]string{"needs an approval", "the schedule is cancelled"}},
		{"windows removed: any time", d(time.Minute), &model.Environment{Name: "prod"}, "2026-03-01T05:00:00Z", "", true, "", nil},
		{"next fitting window after the expiry", &model.Deployment{ID: "d-8", PredictedStage2: 5 * time.Minute, ExpireTime: utcTime("2026-03-01T02:30:00Z")},
			env, "2026-03-01T02:00:00Z", "", false, "", []string{"opens after the deployment expires at 2026-03-01T02:30:00Z"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := decideScheduled(tt.d, tt.env, utcTime(tt.now), tt.problems)
			if st.start != tt.start || (tt.reschedule == "") != st.reschedule.IsZero() || (tt.reschedule != "" && !st.reschedule.Equal(utcTime(tt.reschedule))) {
				t.Fatalf("step = %+v", st)
			}
			for _, part := range tt.reason {
				if !strings.Contains(st.reason, part) {
					t.Errorf("reason %q lacks %q", st.reason, part)
				}
			}
		})
	}
}

func TestCheckWindowSuggestions(t *testing.T) {
	now := utcTime("2026-03-02T12:00:00Z")
	windows := []string{"Mon-Fri 02:00-04:00 UTC"}
	tests := []struct {
		name  string
		state model.DeploymentState
		two   bool
		want  string
	}{
		{"continue", model.Prepared, true, "continue then, or schedule it with `cutoverctl deploy continue d-1 --at-window`, or override with --force"},
		{"start, two-stage", model.Planned, true, "start then, or prepare it now and schedule stage 2 with `cutoverctl deploy continue d-1 --at-window`, or override"},
		{"start, single stage", model.Planned, false, "start then, or override with --force --reason \"...\"; deployment d-1 stays PLANNED"},
	}
	for _, tt := range tests {
		verb := map[bool]string{true: "continue", false: "start"}[tt.state == model.Prepared]
		_, err := checkWindow(&model.Deployment{ID: "d-1", State: tt.state}, &model.Environment{Name: "prod", TwoStage: tt.two, Windows: windows}, now, ContinueOptions{}, verb)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v\nwant %q", tt.name, err, tt.want)
		}
	}
}

func TestWindows(t *testing.T) {
	lisbon := &model.Environment{Name: "prod", Windows: []string{"Mon-Sun 02:00-04:00 Europe/Lisbon"}}
	tests := []struct {
		name     string
		env      *model.Environment
		now      string
		open     bool
		closes   string // RFC 3339; "" = zero
		next     string // part of Next; "" = empty
		nextOpen string // RFC 3339; "" = zero
	}{
		{"no windows: open, nothing else", &model.Environment{Name: "dev"}, "2026-03-01T12:00:00Z", true, "", "", ""},
		{"inside: open until the close", lisbon, "2026-03-28T02:30:00Z", true, "2026-03-28T04:00:00Z", "Sun 2026-03-29 02:00 WEST", ""},
		{"before: closed, next opening", lisbon, "2026-03-28T01:30:00Z", false, "", "Sat 2026-03-28 02:00 WET", "2026-03-28T02:00:00Z"},
		{"unparsable stored windows count as none", &model.Environment{Name: "x", Windows: []string{"nonsense"}}, "2026-03-01T12:00:00Z", true, "", "", ""},
	}
	at := func(s string) time.Time {
		if s == "" {
			return time.Time{}
		}
		return utcTime(s)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := Windows(tt.env, utcTime(tt.now))
			if w.Open != tt.open || !w.Closes.Equal(at(tt.closes)) || !w.NextOpen.Equal(at(tt.nextOpen)) ||
				(tt.next == "") != (w.Next == "") || !strings.Contains(w.Next, tt.next) {
				t.Errorf("Windows = %+v\nwant open %v, closes %q, next %q, next open %q", w, tt.open, tt.closes, tt.next, tt.nextOpen)
			}
		})
	}
}
