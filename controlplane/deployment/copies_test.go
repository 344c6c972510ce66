package deployment

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/cutover-dev/cutover/controlplane/fleet"
	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/controlplane/store"
	"github.com/cutover-dev/cutover/pkg/manifest"
)

// fakeCopies says which controllers lack the releases.
type fakeCopies struct {
	lacking []string
	err     error
}

func (f *fakeCopies) Lacking(context.Context, []string) ([]string, error) { return f.lacking, f.err }
func (f *fakeCopies) Changed(context.Context) <-chan struct{}             { return nil }

func staged(agent string) fleet.Report {
	return fleet.Report{Agent: agent, DeploymentID: "d-1", CommandID: "d-1.stage." + agent, Outcome: fleet.Done,
		ReleaseBytes: 100, TransferredBytes: 100, Run: "r"}
}

// copiesService is progressService's, with release r1 recorded.
func copiesService(t *testing.T) (*Service, func() *model.Deployment) {
	t.Helper()
	s, stored := progressService(t, staging())
	putRelease(t, s, &manifest.Manifest{Application: "hello"})
	return s, stored
}

// putRelease records m as release r1 of application hello.
func putRelease(t *testing.T, s *Service, m *manifest.Manifest) {
	t.Helper()
	if err := s.store.Update(func(tx model.Tx) error {
		if err := tx.PutApplication(&model.Application{Name: "hello"}); err != nil {
			return err
		}
		return tx.PutRelease(&model.Release{ID: "r1", Application: "hello", CreateTime: t0}, m.Encode())
	}); err != nil {
		t.Fatal(err)
	}
}

// TestPreparedWaitsForCopies: a deployment whose agents all staged stays
// PREPARING, saying which controllers it waits for, until every live
// controller holds its releases; a check that finds the same wait writes
// nothing; a failed read of who holds them waits too, saying so.
func TestPreparedWaitsForCopies(t *testing.T) {
	s, stored := copiesService(t)
	copies := &fakeCopies{lacking: []string{"ctl-b:7070", "ctl-c:7070"}}
	s.copies = copies
	handle(t, s, staged("a"))
	handle(t, s, staged("b"))
	d := stored()
	if d.State != model.Preparing {
		t.Fatalf("state %s with two controllers lacking the release; want PREPARING", d.State)
	}
	last := d.History[len(d.History)-1].Message
	if !strings.Contains(last, "waiting for the controllers ctl-b:7070, ctl-c:7070 to hold them") {
		t.Fatalf("last note %q; want the controllers waited for", last)
	}
	steps := len(d.History)

	copies.lacking = []string{"ctl-b:7070", "ctl-c:7070"}
	s.recheckCopies()
	if d := stored(); len(d.History) != steps || d.State != model.Preparing {
		t.Fatalf("a check that found the same wait wrote: %d history entries (was %d), state %s", len(d.History), steps, d.State)
	}

	copies.lacking, copies.err = nil, errors.New("etcd: no leader")
	s.recheckCopies()
	if d := stored(); d.State != model.Preparing || !strings.Contains(d.History[len(d.History)-1].Message, "waiting to learn which controllers hold them (etcd: no leader)") {
		t.Fatalf("a failed read: state %s, last note %q; want PREPARING, saying why", d.State, d.History[len(d.History)-1].Message)
	}

	copies.err = nil
	s.recheckCopies()
	if d := stored(); d.State != model.Prepared {
		t.Fatalf("every controller holds the release: state %s, want PREPARED", d.State)
	}
	if s.copiesAwaited() {
		t.Fatal("the deployment is still awaited after PREPARED")
	}
}

// TestPreparedWithoutCopies: one controller (no Copies) goes to PREPARED
// as soon as every agent staged.
func TestPreparedWithoutCopies(t *testing.T) {
	s, stored := copiesService(t)
	handle(t, s, staged("a"))
	handle(t, s, staged("b"))
	if d := stored(); d.State != model.Prepared {
		t.Fatalf("state %s, want PREPARED", d.State)
	}
}

// TestResumeWithoutTheRelease: a controller that resumes a PREPARING
// deployment whose release it does not hold whole (the leader that built
// it died before another controller held it) ends it FAILED, saying so;
// one that holds it resumes it.
func TestResumeWithoutTheRelease(t *testing.T) {
	for _, holds := range []bool{false, true} {
		s, stored := progressService(t, staging())
		data := []byte("the release's only chunk")
		id := manifest.HashChunk(data)
		m := &manifest.Manifest{Application: "hello", Files: []manifest.File{{Path: "a", Mode: 0o644, Size: int64(len(data)),
			Chunks: []manifest.ChunkRef{{ID: id, Size: int64(len(data))}}}}}
		putRelease(t, s, m)
		if holds {
			if err := s.store.(*store.Store).PutChunks([]manifest.Chunk{{ID: id, Data: data}}); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.resume(context.Background()); err != nil {
			t.Fatal(err)
		}
		d := stored()
		switch {
		case holds && d.State != model.Preparing:
			t.Errorf("holding the release: %s after resume, want PREPARING", d.State)
		case !holds && (d.State != model.Failed || !strings.Contains(d.History[len(d.History)-1].Message, "does not hold every chunk of r1")):
			t.Errorf("without the release: %s (%q) after resume, want FAILED, saying why", d.State, d.History[len(d.History)-1].Message)
		}
	}
}
