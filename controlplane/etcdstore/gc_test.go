package etcdstore

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/pkg/appspec"
	"github.com/cutover-dev/cutover/pkg/errkind"
	"github.com/cutover-dev/cutover/pkg/manifest"
)

// TestCollectGarbage: the releases nothing needs go from etcd (in several
// transactions when there are many), their chunks from the bbolt file;
// nothing goes while a build is in progress.
func TestCollectGarbage(t *testing.T) {
	const releases = 40 // 4 keys each: more than one transaction
	cases := []struct {
		name     string
		building bool
		kept     int // releases left
	}{
		{"unneeded releases and their chunks deleted", false, 1},
		{"a build in progress: nothing deleted", true, releases},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, chunks := openWithChunks(t, newPrefix())
			var running string
			for i := range releases {
				data := fmt.Appendf(nil, "content %d", i)
				m := &manifest.Manifest{Application: "hello", Spec: appspec.Spec{Name: "hello", Run: appspec.Run{Command: "true"}},
					Files: []manifest.File{{Path: "a", Mode: 0o644, Size: int64(len(data)), Chunks: []manifest.ChunkRef{{ID: manifest.HashChunk(data), Size: int64(len(data))}}}}}
				b := m.Encode()
				id := manifest.ReleaseID(b)
				if i == 0 {
					running = id
				}
				if err := s.Update(func(tx model.Tx) error {
					if err := tx.PutChunk(manifest.HashChunk(data), data); err != nil {
						return err
					}
					return tx.PutRelease(&model.Release{ID: id, Application: "hello", CreateTime: time.Unix(int64(i), 0)}, b)
				}); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Update(func(tx model.Tx) error {
				env := &model.Environment{Name: "production", DeployedVersions: map[string]model.DeployedVersion{"hello": {ReleaseID: running}}}
				if err := tx.PutApplication(&model.Application{Name: "hello"}); err != nil {
					return err
				}
				if c.building {
					if err := tx.PutDeployment(&model.Deployment{ID: "d-1", State: model.Preparing, Applications: []model.DeploymentApplication{{Name: "hello"}}}); err != nil {
						return err
					}
				}
				return tx.PutEnvironment(env)
			}); err != nil {
				t.Fatal(err)
			}
			got, err := s.CollectGarbage(1, chunks)
			if err != nil {
				t.Fatal(err)
			}
			if got.Skipped != c.building || got.Releases != releases-c.kept || got.Chunks != releases-c.kept {
				t.Errorf("collected %+v; want %d releases and chunks, skipped %v", got, releases-c.kept, c.building)
			}
			if err := s.View(func(tx model.Tx) error {
				rs, err := tx.ReleasesOf("hello")
				if len(rs) != c.kept {
					t.Errorf("%d releases left, want %d", len(rs), c.kept)
				}
				if _, err := tx.Manifest(running); err != nil {
					t.Errorf("the running release's manifest: %v", err)
				}
				return err
			}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestSweepParts: the parts of a release whose transaction failed after
// they were written ahead are deleted; a recorded release's stay.
func TestSweepParts(t *testing.T) {
	s, _ := openWithChunks(t, newPrefix())
	m := (&manifest.Manifest{Application: "hello", Spec: appspec.Spec{Name: "hello", Run: appspec.Run{Command: "true"}}}).Encode()
	kept := manifest.ReleaseID(m)
	if err := s.Update(func(tx model.Tx) error {
		return tx.PutRelease(&model.Release{ID: kept, Application: "hello"}, m)
	}); err != nil {
		t.Fatal(err)
	}
	// A release whose commit aborts: its parts are written, its record not.
	s.SetGuards(clientv3.Compare(clientv3.CreateRevision("/no-such-key"), ">", 0))
	if err := s.Update(func(tx model.Tx) error {
		return tx.PutRelease(&model.Release{ID: "r-lost", Application: "hello"}, []byte("lost"))
	}); !errors.Is(err, errkind.Aborted) {
		t.Fatalf("the guarded update: %v, want Aborted", err)
	}
	s.SetGuards()
	count := func() int64 {
		res, err := s.cfg.Client.Get(context.Background(), s.cfg.Prefix+collParts+"/", clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			t.Fatal(err)
		}
		return res.Count
	}
	if n := count(); n != 2 {
		t.Fatalf("%d parts before the sweep, want 2 (one each)", n)
	}
	if err := s.sweepParts(); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 1 {
		t.Errorf("%d parts after the sweep, want 1 (the recorded release's)", n)
	}
	if err := s.View(func(tx model.Tx) error { _, err := tx.Manifest(kept); return err }); err != nil {
		t.Errorf("the recorded release's manifest: %v", err)
	}
}
