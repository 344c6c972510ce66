package store

import (
	"fmt"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/pkg/appspec"
	"github.com/cutover-dev/cutover/pkg/manifest"
)

// putRelease stores release name of app "hello", created at minute n, with
// one chunk of its own and one chunk shared by every release.
func putRelease(t *testing.T, s *Store, name string, n int) (id string, own manifest.ChunkID) {
	t.Helper()
	shared := []byte("shared by every release")
	data := []byte("content of " + name)
	m := &manifest.Manifest{Application: "hello", Spec: appspec.Spec{Name: "hello", Run: appspec.Run{Command: "true"}},
		Files: []manifest.File{
			{Path: "a", Mode: 0o644, Size: int64(len(data)), Chunks: []manifest.ChunkRef{{ID: manifest.HashChunk(data), Size: int64(len(data))}}},
			{Path: "b", Mode: 0o644, Size: int64(len(shared)), Chunks: []manifest.ChunkRef{{ID: manifest.HashChunk(shared), Size: int64(len(shared))}}},
		}}
	if err := s.PutChunks([]manifest.Chunk{{ID: manifest.HashChunk(data), Data: data}, {ID: manifest.HashChunk(shared), Data: shared}}); err != nil {
		t.Fatal(err)
	}
	b := m.Encode()
	id = manifest.ReleaseID(b)
	err := s.update(func(tx *Tx) error {
		return tx.PutRelease(&model.Release{ID: id, Application: "hello", CreateTime: time.Unix(int64(60*n), 0)}, b)
	})
	if err != nil {
		t.Fatal(err)
	}
	return id, manifest.HashChunk(data)
}

func TestCollectGarbage(t *testing.T) {
	tests := []struct {
		name      string
		keep      int
		running   int // release (index) an environment runs; -1: none
		deploying int // release a deployment in state deploying names; -1: none
		state     model.DeploymentState
		want      []bool // kept, per release r0 (oldest) … r4; r1 and r3 were installed
		skipped   bool
	}{
		{"keep the newest installed", 2, -1, -1, "", []bool{false, true, false, true, false}, false},
		{"running kept", 1, 0, -1, "", []bool{true, false, false, true, false}, false},
		{"prepared deployment kept", 1, -1, 2, model.Prepared, []bool{false, false, true, true, false}, false},
		{"aborted deployment not", 1, -1, 2, model.Aborted, []bool{false, false, false, true, false}, false},
		{"build in progress: nothing", 1, -1, -1, model.Preparing, []bool{true, true, true, true, true}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t, t.TempDir())
			defer s.Close()
			var ids []string
			var own []manifest.ChunkID
			for i := range 5 {
				id, c := putRelease(t, s, fmt.Sprint("r", i), i)
				ids, own = append(ids, id), append(own, c)
			}
			err := s.update(func(tx *Tx) error {
				if err := tx.PutApplication(&model.Application{Name: "hello"}); err != nil {
					return err
				}
				env := &model.Environment{Name: "prod"}
				if tt.running >= 0 {
					env.DeployedVersions = map[string]model.DeployedVersion{"hello": {ReleaseID: ids[tt.running]}}
				}
				if err := tx.PutEnvironment(env); err != nil {
					return err
				}
				// r1 and r3 were installed by deployments that ended DEPLOYED.
				for i, n := range []int{1, 3} {
					if err := tx.PutDeployment(&model.Deployment{ID: fmt.Sprint("d-", 10+i), Environment: "prod", State: model.Deployed,
						Applications: []model.DeploymentApplication{{Name: "hello", ReleaseID: ids[n]}}}); err != nil {
						return err
					}
				}
				if tt.state == "" {
					return nil
				}
				d := &model.Deployment{ID: "d-1", Environment: "prod", State: tt.state, Applications: []model.DeploymentApplication{{Name: "hello"}}}
				if tt.deploying >= 0 {
					d.Applications[0].ReleaseID = ids[tt.deploying]
				}
				return tx.PutDeployment(d)
			})
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.CollectGarbage(tt.keep)
			if err != nil {
				t.Fatal(err)
			}
			if got.Skipped != tt.skipped {
				t.Errorf("skipped = %v", got.Skipped)
			}
			dropped := 0
			_ = s.view(func(tx *Tx) error {
				for i, id := range ids {
					_, rerr := tx.Release(id)
					_, merr := tx.Manifest(id)
					if kept := rerr == nil; kept != tt.want[i] || (merr == nil) != kept || tx.HasChunk(own[i]) != kept {
						t.Errorf("r%d: release kept %v, manifest %v, own chunk %v; want kept %v", i, rerr == nil, merr == nil, tx.HasChunk(own[i]), tt.want[i])
					}
					if !tt.want[i] {
						dropped++
					}
				}
				if !tx.HasChunk(manifest.HashChunk([]byte("shared by every release"))) {
					t.Error("the shared chunk was deleted")
				}
				if ids, data := countKeys(tx, bucketChunkIDs), countKeys(tx, bucketChunkData); ids != data || ids != 5-dropped+1 {
					t.Errorf("chunk_ids has %d keys, chunk_data %d; want %d each", ids, data, 5-dropped+1)
				}
				return nil
			})
			if got.Releases != dropped || got.Chunks != dropped || got.ChunkBytes != int64(dropped*len("content of r0")) {
				t.Errorf("collected %+v, want %d releases and chunks", got, dropped)
			}
		})
	}
}
