package session

import (
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/agent/activate"
	"github.com/cutover-dev/cutover/agent/hook"
	"github.com/cutover-dev/cutover/agent/layout"
	"github.com/cutover-dev/cutover/agent/peer"
	"github.com/cutover-dev/cutover/agent/stage"
	"github.com/cutover-dev/cutover/pkg/appspec"
)

type fakeStager struct {
	err         error
	reverifyErr error
	pruned      int
	pruneKeep   int
	dropped     []stage.Release
	kept        []bool
	// reverified lists the releases Reverify was given.
	reverified []stage.Release
}

func (f *fakeStager) Stage(_ context.Context, rs []stage.Release, _ int64, progress func(stage.Progress)) (stage.Progress, error) {
	progress(stage.Progress{ReleaseBytes: 9, TransferredBytes: 3})
	return stage.Progress{ReleaseBytes: 9, TransferredBytes: 9}, f.err
}

func (f *fakeStager) Drop(_ context.Context, rs []stage.Release, keep func(stage.Release) bool) error {
	for _, r := range rs {
		f.dropped = append(f.dropped, r)
		f.kept = append(f.kept, keep(r))
	}
	return nil
}

func (f *fakeStager) Prune(_ context.Context, keep int, _ func(stage.Release) bool) error {
	f.pruned++
	f.pruneKeep = keep
	return nil
}

func (f *fakeStager) Reverify(_ context.Context, rs []stage.Release) (stage.Progress, error) {
	f.reverified = append(f.reverified, rs...)
	return stage.Progress{}, f.reverifyErr
}

func (f *fakeStager) Check(rs []stage.Release) error { return f.err }

func (f *fakeStager) Staged() (map[string][]string, error) {
	return map[string][]string{"hello": {"r2", "r1"}, "other": {"x"}}, nil
}

type fakeActivator struct {
	res    activate.Result
	hooks  []hook.Result
	err    error
	armErr error
	armed  bool
	// hooksKey is the command id and activation RunHooks was given.
	hooksKey [2]string
	// armed and committed are the activations Arm and Commit were given.
	armedID, committedID activate.ActivationID
	// commitOpt is what Commit was given; finished lists the Finish calls.
	commitOpt activate.CommitOptions
	finished  []string
	// stopped lists the apps StopApp was given.
	stopped []string
}

func (f *fakeActivator) Arm(_ context.Context, id activate.ActivationID, _ []activate.Release) error {
	f.armed, f.armedID = f.armErr == nil, id
	return f.armErr
}
func (f *fakeActivator) Commit(_ context.Context, id activate.ActivationID, _ []activate.Release, _ []appspec.HookRef, opt activate.CommitOptions) (activate.Result, []hook.Result, error) {
	f.commitOpt, f.committedID = opt, id
	return f.res, f.hooks, f.err
}
func (f *fakeActivator) Finish(id activate.ActivationID, abort bool) bool {
	f.finished = append(f.finished, fmt.Sprintf("%s abort=%v", id, abort))
	return true
}
func (f *fakeActivator) Disarm(context.Context, activate.ActivationID) error { return f.err }
func (f *fakeActivator) RunHooks(_ context.Context, command string, id activate.ActivationID, _ []activate.Release, _ []appspec.HookRef) ([]hook.Result, error) {
	f.hooksKey = [2]string{command, id.String()}
	return f.hooks, f.err
}
func (f *fakeActivator) Rollback(context.Context, string, []string) error { return f.err }
func (f *fakeActivator) StopApp(_ context.Context, app string) error {
	f.stopped = append(f.stopped, app)
	return f.err
}
func (f *fakeActivator) Needed(app, id string) bool { return id == "r1" }

// TestRunnerJournalsHooksUnderTheCommandID: a hooks command's hooks are
// journaled under its id (what a resend carries again), with its deployment.
func TestRunnerJournalsHooksUnderTheCommandID(t *testing.T) {
	act := &fakeActivator{}
	r := Runner{Activator: act}
	r.Handle(context.Background(), Command{Kind: KindHooks, ID: "d-1.before_activate.fe-1", Deployment: "d-1"}, func(Report) {})
	if act.hooksKey != [2]string{"d-1.before_activate.fe-1", "d-1"} {
		t.Errorf("RunHooks got command and deployment %q", act.hooksKey)
	}
}

// TestRunnerRollbackAttempt: the commands of a rollback by command reach
// the activator as the attempt's activation, and their reports, progress
// included, echo the attempt.
func TestRunnerRollbackAttempt(t *testing.T) {
	want := activate.ActivationID{Deployment: "d-1", RollbackAttempt: 3}
	for _, kind := range []Kind{KindArm, KindCommit, KindHooks} {
		t.Run(string(kind), func(t *testing.T) {
			act := &fakeActivator{}
			r := &Runner{Stager: &fakeStager{}, Activator: act}
			var progress []Report
			rep := r.Handle(context.Background(), Command{Kind: kind, ID: "c", Deployment: "d-1", RollbackAttempt: 3, Hold: true},
				func(p Report) { progress = append(progress, p) })
			if act.commitOpt.Ready != nil {
				act.commitOpt.Ready()
			}
			got := map[Kind]string{KindArm: act.armedID.String(), KindCommit: act.committedID.String(), KindHooks: act.hooksKey[1]}[kind]
			if got != want.String() {
				t.Errorf("the activator was given %q, want %q", got, want)
			}
			for _, p := range append(progress, rep) {
				if p.Deployment != "d-1" || p.RollbackAttempt != 3 || p.CommandID != "c" {
					t.Errorf("report %+v: want command c of d-1, attempt 3", p)
				}
			}
		})
	}
}

// TestRunnerStopAppGoesToTheActivator: a stop_app command stops its app.
func TestRunnerStopAppGoesToTheActivator(t *testing.T) {
	act := &fakeActivator{}
	r := Runner{Activator: act}
	r.Handle(context.Background(), Command{Kind: KindStopApp, ID: "stop.hello.fe-1.x", Applications: []string{"hello"}}, func(Report) {})
	if !reflect.DeepEqual(act.stopped, []string{"hello"}) {
		t.Errorf("StopApp got %v, want [hello]", act.stopped)
	}
}

// TestArmReverifiesWhatItStages: a release that arm stages itself is
// re-verified once staged, as the staged ones are: a stage does not hash
// what it clones or copies from other staged releases.
func TestArmReverifiesWhatItStages(t *testing.T) {
	st := &fakeStager{}
	r := Runner{Stager: st, Activator: &fakeActivator{}}
	rels := []Release{{Application: "hello", ID: "r1"}, {Application: "hello", ID: "r9"}}
	if rep := r.Handle(context.Background(), Command{Kind: KindArm, ID: "c", Releases: rels}, func(Report) {}); rep.Outcome != Done {
		t.Fatalf("arm: %+v", rep)
	}
	want := []stage.Release{{Application: "hello", ID: "r1"}, {Application: "hello", ID: "r9"}}
	if !reflect.DeepEqual(st.reverified, want) {
		t.Errorf("re-verified %v, want %v (the staged one, then the one arm staged)", st.reverified, want)
	}
}

func TestRunnerHandle(t *testing.T) {
	when := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	rels := []Release{{Application: "hello", ID: "r1"}}
	tests := []struct {
		name string
		r    Runner
		cmd  Command
		want Report
	}{
		{"stage done", Runner{Stager: &fakeStager{}}, Command{Kind: KindStage, ID: "c", Deployment: "d", Releases: rels},
			Report{CommandID: "c", Deployment: "d", Outcome: Done, ReleaseBytes: 9, TransferredBytes: 9}},
		{"stage failed", Runner{Stager: &fakeStager{err: errors.New("bad chunk")}}, Command{Kind: KindStage, ID: "c", Releases: rels},
			Report{CommandID: "c", Outcome: Failed, Error: "bad chunk", ReleaseBytes: 9, TransferredBytes: 9}},
		{"arm re-verifies a staged release", Runner{Stager: &fakeStager{}, Activator: &fakeActivator{}}, Command{Kind: KindArm, ID: "c", Releases: rels},
			Report{CommandID: "c", Outcome: Done}},
		{"arm stages a release not staged", Runner{Stager: &fakeStager{}, Activator: &fakeActivator{}}, Command{Kind: KindArm, ID: "c", Releases: []Release{{Application: "hello", ID: "r9"}}},
			Report{CommandID: "c", Outcome: Done, ReleaseBytes: 9, TransferredBytes: 9}},
		{"arm refused by the re-verify", Runner{Stager: &fakeStager{reverifyErr: errors.New("controller away")}, Activator: &fakeActivator{}}, Command{Kind: KindArm, ID: "c", Releases: rels},
			Report{CommandID: "c", Outcome: Failed, Error: "readiness re-check before the swap (nothing was swapped): controller away"}},
		{"arm verify only", Runner{Stager: &fakeStager{}, Activator: &fakeActivator{}}, Command{Kind: KindArm, ID: "c", Releases: rels, VerifyOnly: true},
			Report{CommandID: "c", Outcome: Done}},
		{"arm, damaged and verify only", Runner{Stager: &fakeStager{err: errors.New("damaged")}, Activator: &fakeActivator{}}, Command{Kind: KindArm, ID: "c", Releases: rels, VerifyOnly: true},
			Report{CommandID: "c", Outcome: Failed, Error: "readiness re-check before the swap (nothing was swapped): damaged"}},
		{"arm failed", Runner{Stager: &fakeStager{}, Activator: &fakeActivator{armErr: errors.New("no link")}}, Command{Kind: KindArm, ID: "c", Releases: rels},
			Report{CommandID: "c", Outcome: Failed, Error: "no link"}},
		{"commit done", Runner{Stager: &fakeStager{}, Activator: &fakeActivator{res: activate.Result{SwapTime: when}, hooks: []hook.Result{{Command: "v"}}}}, Command{Kind: KindCommit, ID: "c", Releases: rels},
			Report{CommandID: "c", Outcome: Done, SwapTime: when, Hooks: []hook.Result{{Command: "v"}}}},
		{"commit swapped back", Runner{Stager: &fakeStager{}, Activator: &fakeActivator{res: activate.Result{SwapTime: when, SwappedBack: true}, err: errors.New("unhealthy")}},
			Command{Kind: KindCommit, ID: "c", Releases: rels},
			Report{CommandID: "c", Outcome: Failed, Error: "unhealthy", SwapTime: when, SwappedBack: true}},
		{"disarm", Runner{Activator: &fakeActivator{}}, Command{Kind: KindDisarm, ID: "c"}, Report{CommandID: "c", Outcome: Done}},
		{"hooks failed", Runner{Activator: &fakeActivator{hooks: []hook.Result{{Command: "x", Error: "exit 1"}}, err: errors.New("exit 1")}}, Command{Kind: KindHooks, ID: "c"},
			Report{CommandID: "c", Outcome: Failed, Error: "exit 1", Hooks: []hook.Result{{Command: "x", Error: "exit 1"}}}},
		{"rollback", Runner{Activator: &fakeActivator{}}, Command{Kind: KindRollback, ID: "c"}, Report{CommandID: "c", Outcome: Done}},
		{"stop app", Runner{Activator: &fakeActivator{}}, Command{Kind: KindStopApp, ID: "c", Applications: []string{"hello"}}, Report{CommandID: "c", Outcome: Done}},
		{"stop app failed", Runner{Activator: &fakeActivator{err: errors.New("read-only file system")}}, Command{Kind: KindStopApp, ID: "c", Applications: []string{"hello"}},
			Report{CommandID: "c", Outcome: Failed, Error: "read-only file system"}},
		{"stop app without an app", Runner{Activator: &fakeActivator{}}, Command{Kind: KindStopApp, ID: "c"},
			Report{CommandID: "c", Outcome: Failed, Error: "stop_app names 0 applications, want 1"}},
		{"unknown", Runner{}, Command{Kind: "explode", ID: "c"}, Report{CommandID: "c", Outcome: Failed, Error: `unknown command kind "explode"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var progress []Report
			got := tt.r.Handle(context.Background(), tt.cmd, func(r Report) { progress = append(progress, r) })
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
			if tt.cmd.Kind == KindStage && (len(progress) != 1 || progress[0].Outcome != Progress || progress[0].TransferredBytes != 3) {
				t.Errorf("progress = %+v", progress)
			}
		})
	}
}

func TestRunnerDropKeepsWhatRollbackNeeds(t *testing.T) {
	st := &fakeStager{}
	r := Runner{Stager: st, Activator: &fakeActivator{}}
	r.Handle(context.Background(), Command{Kind: KindDrop, Releases: []Release{{"hello", "r1"}, {"hello", "r0"}}}, func(Report) {})
	if !reflect.DeepEqual(st.kept, []bool{true, false}) {
		t.Errorf("keep = %v, want [true false]", st.kept)
	}
}

func TestRunnerStatus(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(layout.ReleaseDir(root, "hello", "r1"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(layout.CurrentTarget("r1"), layout.CurrentPath(root, "hello")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(layout.AppDir(root, "broken"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(layout.CurrentPath(root, "broken"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	r := Runner{Stager: &fakeStager{}, Root: root}
	got, err := r.Status()
	if err != nil {
		t.Fatal(err)
	}
	want := []AppStatus{
		{Name: "broken"},
		{Name: "hello", Running: "r1", Staged: []string{"r1", "r2"}},
		{Name: "other", Staged: []string{"x"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Status = %+v, want %+v", got, want)
	}
}

// TestCommitPrunesWithTheEnvironmentsKeep checks that a successful commit
// prunes old releases keeping the count the controller sent (the
// environment's keep_releases), or the default when it sent none, and that
// a failed commit prunes nothing.
func TestCommitPrunesWithTheEnvironmentsKeep(t *testing.T) {
	rels := []Release{{Application: "hello", ID: "r2"}}
	tests := []struct {
		name       string
		keep       int
		err        error
		wantPruned int
		wantKeep   int
	}{
		{"environment setting", 5, nil, 1, 5},
		{"default", 0, nil, 1, stage.DefaultKeepReleases},
		{"failed commit keeps everything", 5, errors.New("unhealthy"), 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := &fakeStager{}
			r := Runner{Stager: st, Activator: &fakeActivator{err: tt.err}}
			r.Handle(context.Background(), Command{Kind: KindCommit, ID: "c", Releases: rels, KeepReleases: tt.keep}, func(Report) {})
			if st.pruned != tt.wantPruned || st.pruneKeep != tt.wantKeep {
				t.Fatalf("pruned %d times keeping %d, want %d keeping %d", st.pruned, st.pruneKeep, tt.wantPruned, tt.wantKeep)
			}
		})
	}
}

// A commit passes hold on and reports ready through progress; a finish
// reaches the activator without a report; a rollback first aborts a held
// commit of its deployment.
func TestRunnerHoldFinishAndRollback(t *testing.T) {
	act := &fakeActivator{res: activate.Result{Overlap: 30 * time.Millisecond}}
	r := &Runner{Stager: &fakeStager{}, Activator: act}
	var progress []Report
	rep := r.Handle(context.Background(), Command{Kind: KindCommit, ID: "c", Deployment: "d-1", Hold: true}, func(p Report) { progress = append(progress, p) })
	if !act.commitOpt.Hold || act.commitOpt.Ready == nil {
		t.Fatalf("commit options %+v: want hold and a ready func", act.commitOpt)
	}
	act.commitOpt.Ready()
	if len(progress) != 1 || !progress[0].Ready || progress[0].CommandID != "c" || progress[0].Outcome != Progress {
		t.Fatalf("ready reported as %+v", progress)
	}
	if rep.Overlap != 30*time.Millisecond || rep.Outcome != Done {
		t.Fatalf("commit report %+v: want DONE with the overlap", rep)
	}
	if rep := r.Handle(context.Background(), Command{Kind: KindFinish, ID: "c", Deployment: "d-1"}, nil); rep.CommandID != "" {
		t.Fatalf("finish reported %+v; want no report", rep)
	}
	r.Handle(context.Background(), Command{Kind: KindRollback, ID: "r", Deployment: "d-1"}, nil)
	if want := []string{"d-1 abort=false", "d-1 abort=true"}; !slices.Equal(act.finished, want) {
		t.Fatalf("Finish calls %v, want %v", act.finished, want)
	}
}

// usedPeers records what a Runner tells its peer source.
type usedPeers struct{ got []string }

func (u *usedPeers) Use(deployment string, releases []string, peers []peer.Peer, swarm *peer.Swarm) {
	u.got = append(u.got, fmt.Sprintf("%s %v %d peers swarm=%v", deployment, releases, len(peers), swarm != nil))
}

// TestRunnerTellsThePeersOfStageAndArm: the peers of a stage command
// (with its swarm) and of an arm command go to the peer source before
// either stages; other commands leave it alone.
func TestRunnerTellsThePeersOfStageAndArm(t *testing.T) {
	rels := []Release{{Application: "hello", ID: "r9"}}
	peers := []peer.Peer{{Name: "fe2", Address: "10.0.0.2:7071"}}
	u := &usedPeers{}
	r := Runner{Stager: &fakeStager{}, Activator: &fakeActivator{}, Peers: u}
	for _, cmd := range []Command{
		{Kind: KindStage, ID: "s", Deployment: "d", Releases: rels, Peers: peers, Swarm: &peer.Swarm{Slices: 2, Owners: []string{"", "fe2"}}},
		{Kind: KindArm, ID: "a", Deployment: "d", Releases: rels, Peers: peers},
		{Kind: KindDisarm, ID: "x", Deployment: "d"},
	} {
		r.Handle(context.Background(), cmd, func(Report) {})
	}
	want := []string{"d [r9] 1 peers swarm=true", "d [r9] 1 peers swarm=false"}
	if !slices.Equal(u.got, want) {
		t.Errorf("peer source told %q, want %q", u.got, want)
	}
}
