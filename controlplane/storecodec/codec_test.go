package storecodec

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/pkg/errkind"
)

// fill sets every field of the value v points to, recursively, to a
// non-zero value, so that a conversion that forgets a field fails the
// round trip. Enum-like string types get a valid value.
func fill(t *testing.T, v reflect.Value, n *int) {
	t.Helper()
	*n++
	switch v.Type() {
	case reflect.TypeFor[time.Time]():
		v.Set(reflect.ValueOf(time.Date(2026, 1, 2, 3, 4, 5, *n, time.UTC)))
		return
	case reflect.TypeFor[time.Duration]():
		v.SetInt(int64(*n) * int64(time.Millisecond))
		return
	case reflect.TypeFor[model.DeploymentState]():
		v.Set(reflect.ValueOf(model.RolledBack))
		return
	case reflect.TypeFor[model.AgentState]():
		v.Set(reflect.ValueOf(model.AgentArmed))
		return
	case reflect.TypeFor[model.Stage2Step]():
		v.Set(reflect.ValueOf(model.StepAfter))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(fmt.Sprintf("s%d", *n))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int32, reflect.Int64:
		v.SetInt(int64(*n))
	case reflect.Uint64:
		v.SetUint(uint64(*n))
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(t, v.Elem(), n)
	case reflect.Struct:
		for i := range v.NumField() {
			fill(t, v.Field(i), n)
		}
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		for i := range 2 {
			fill(t, v.Index(i), n)
		}
	case reflect.Map:
		v.Set(reflect.MakeMap(v.Type()))
		for range 2 {
			k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
			fill(t, k, n)
			fill(t, e, n)
			v.SetMapIndex(k, e)
		}
	default:
		t.Fatalf("fill: no value for %s", v.Type())
	}
}

func filled[V any](t *testing.T) *V {
	v, n := new(V), 0
	fill(t, reflect.ValueOf(v).Elem(), &n)
	return v
}

// roundTrip encodes v, decodes it and compares, after fix adjusts what
// the encoding leaves out on purpose (a deployment's agents).
func roundTrip[V any](t *testing.T, v *V, enc func(*V) ([]byte, error), dec func([]byte) (*V, error), fix func(*V)) {
	t.Helper()
	b, err := enc(v)
	if err != nil {
		t.Fatal(err)
	}
	got, err := dec(b)
	if err != nil {
		t.Fatal(err)
	}
	want := *v
	if fix != nil {
		fix(&want)
	}
	if !reflect.DeepEqual(*got, want) {
		t.Errorf("round trip of %T:\n got %+v\nwant %+v", v, *got, want)
	}
	again, err := enc(got)
	if err != nil || !bytes.Equal(again, b) {
		t.Errorf("re-encoding %T gives other bytes (%v): encoding must be deterministic", v, err)
	}
}

func noAgents(d *model.Deployment) { d.Agents = nil }

func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, full bool)
	}{
		{"environment", func(t *testing.T, full bool) { rt(t, full, EncodeEnvironment, DecodeEnvironment, nil) }},
		{"application", func(t *testing.T, full bool) { rt(t, full, EncodeApplication, DecodeApplication, nil) }},
		{"release", func(t *testing.T, full bool) { rt(t, full, EncodeRelease, DecodeRelease, nil) }},
		{"deployment", func(t *testing.T, full bool) { rt(t, full, EncodeDeployment, DecodeDeployment, noAgents) }},
		{"deployment agent", func(t *testing.T, full bool) { rt(t, full, EncodeDeploymentAgent, DecodeDeploymentAgent, nil) }},
		{"agent", func(t *testing.T, full bool) { rt(t, full, EncodeAgent, DecodeAgent, nil) }},
		{"operator token", func(t *testing.T, full bool) { rt(t, full, EncodeOperatorToken, DecodeOperatorToken, nil) }},
		{"join token", func(t *testing.T, full bool) { rt(t, full, EncodeJoinToken, DecodeJoinToken, nil) }},
		{"enrollment", func(t *testing.T, full bool) { rt(t, full, EncodeEnrollment, DecodeEnrollment, nil) }},
		{"audit record", func(t *testing.T, full bool) { rt(t, full, EncodeAuditRecord, DecodeAuditRecord, nil) }},
	} {
		t.Run(tc.name+"/every field", func(t *testing.T) { tc.run(t, true) })
		t.Run(tc.name+"/zero", func(t *testing.T) { tc.run(t, false) })
	}
}

func rt[V any](t *testing.T, full bool, enc func(*V) ([]byte, error), dec func([]byte) (*V, error), fix func(*V)) {
	t.Helper()
	v := new(V)
	if full {
		v = filled[V](t)
	}
	roundTrip(t, v, enc, dec, fix)
}

func TestTimes(t *testing.T) {
	lisbon := time.FixedZone("WEST", 3600)
	for _, tc := range []struct {
		name string
		in   time.Time
		want time.Time
	}{
		{"zero stays zero", time.Time{}, time.Time{}},
		{"nanoseconds kept, UTC", time.Date(2026, 5, 6, 7, 8, 9, 123456789, time.UTC), time.Date(2026, 5, 6, 7, 8, 9, 123456789, time.UTC)},
		{"other zone read back in UTC", time.Date(2026, 5, 6, 8, 8, 9, 1, lisbon), time.Date(2026, 5, 6, 7, 8, 9, 1, time.UTC)},
		{"the Unix epoch is not zero", time.Unix(0, 0).UTC(), time.Unix(0, 0).UTC()},
		{"monotonic reading dropped", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(0), time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := EncodeApplication(&model.Application{CreateTime: tc.in})
			if err != nil {
				t.Fatal(err)
			}
			a, err := DecodeApplication(b)
			if err != nil {
				t.Fatal(err)
			}
			if a.CreateTime != tc.want || a.CreateTime.IsZero() != tc.in.IsZero() {
				t.Errorf("got %v (%#v), want %v", a.CreateTime, a.CreateTime, tc.want)
			}
		})
	}
}

func TestEnums(t *testing.T) {
	for _, s := range append(model.FinalStates, model.Planned, model.Preparing, model.Prepared, model.Activating) {
		d := &model.Deployment{ID: "d-1", State: s, Ending: s, History: []model.Transition{{State: s}}}
		roundTrip(t, d, EncodeDeployment, DecodeDeployment, nil)
	}
	for _, s := range []model.AgentState{model.AgentPending, model.AgentStaging, model.AgentStaged, model.AgentActivating,
		model.AgentActive, model.AgentFailed, model.AgentRolledBack, model.AgentArmed} {
		roundTrip(t, &model.DeploymentAgent{Name: "fe", State: s}, EncodeDeploymentAgent, DecodeDeploymentAgent, nil)
	}
	for _, s := range []model.Stage2Step{model.StepArm, model.StepBefore, model.StepSQL, model.StepCommit, model.StepAfter,
		model.StepContract, model.StepUndoContract, model.StepUndoExpand} {
		roundTrip(t, &model.Deployment{Step: s}, EncodeDeployment, DecodeDeployment, nil)
	}
}

func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  func() error
		kind error
	}{
		{"unknown deployment state", func() error { _, err := EncodeDeployment(&model.Deployment{State: "LIMBO"}); return err }, errkind.InvalidArgument},
		{"unknown state in history", func() error {
			_, err := EncodeDeployment(&model.Deployment{History: []model.Transition{{State: "LIMBO"}}})
			return err
		}, errkind.InvalidArgument},
		{"unknown agent state", func() error { _, err := EncodeDeploymentAgent(&model.DeploymentAgent{State: "LOST"}); return err }, errkind.InvalidArgument},
		{"unknown step", func() error { _, err := EncodeDeployment(&model.Deployment{Step: "dance"}); return err }, errkind.InvalidArgument},
		{"stored state unknown", func() error { _, err := DecodeDeployment([]byte{0x20, 0x63}); return err }, errkind.DataLoss},
		{"garbage", func() error { _, err := DecodeEnvironment([]byte{0xff, 0xff, 0xff}); return err }, errkind.DataLoss},
		{"JSON of schema 5", func() error { _, err := DecodeAgent([]byte(`{"name":"fe-a"}`)); return err }, errkind.DataLoss},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.err(); !errors.Is(err, tc.kind) {
				t.Errorf("error = %v, want kind %v", err, tc.kind)
			}
		})
	}
}

// TestBytesKept: strings are not checked for UTF-8 (a hook's output may be
// anything), so they come back byte for byte instead of failing the write.
func TestBytesKept(t *testing.T) {
	a := &model.DeploymentAgent{Name: "fe", State: model.AgentFailed, Error: "bad \xff\xfe byte",
		Hooks: []model.HookResult{{Output: "\x80\x00binary"}}}
	roundTrip(t, a, EncodeDeploymentAgent, DecodeDeploymentAgent, nil)
}
