package deployment

import (
	"fmt"
	"sync"

	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/pkg/errkind"
	"github.com/cutover-dev/cutover/pkg/manifest"
)

// Environment returns the environment of deployment id. NotFound if
// unknown.
func (s *Service) Environment(id string) (string, error) {
	var env string
	err := s.store.View(func(tx model.Tx) error {
		d, err := tx.DeploymentHeader(id) // asked by every request that names a deployment: not its agents
		if err == nil {
			env = d.Environment
		}
		return err
	})
	return env, err
}

// chunkSets keeps the chunk sets of the releases agents fetch, so that
// checking a FetchChunks request does not decode a manifest each time.
type chunkSets struct {
	mu   sync.Mutex
	sets map[string]map[manifest.ChunkID]struct{}
}

// maxChunkSets bounds the releases whose chunk sets are kept (about
// 32 bytes per 64 KiB chunk: 0.5 MiB for a 1 GiB release).
const maxChunkSets = 16

// ReleaseChunks returns the chunks of release id if a deployment of env
// (any state: a rollback goes back to releases of earlier ones) brings
// it. PermissionDenied otherwise: an agent may fetch only what its
// environment deploys.
func (s *Service) ReleaseChunks(env, id string) (map[manifest.ChunkID]struct{}, error) {
	var raw []byte
	err := s.store.View(func(tx model.Tx) error {
		ds, err := tx.DeploymentHeaders(env) // asked by every fetch of every agent: not their agents
		if err != nil {
			return err
		}
		for _, d := range ds {
			for _, a := range d.Applications {
				if a.ReleaseID == id || a.PreviousReleaseID == id {
					raw, err = tx.Manifest(id)
					return err
				}
			}
		}
		return fmt.Errorf("release %q is not brought by any deployment of environment %s; an agent fetches only its environment's releases: %w", id, env, errkind.PermissionDenied)
	})
	if err != nil {
		return nil, err
	}
	s.chunks.mu.Lock()
	defer s.chunks.mu.Unlock()
	if set, ok := s.chunks.sets[id]; ok {
		return set, nil
	}
	m, err := manifest.Decode(raw)
	if err != nil {
		return nil, fmt.Errorf("release %s: stored manifest: %w", id, err)
	}
	set := map[manifest.ChunkID]struct{}{}
	for _, c := range m.ChunkIDs() {
		set[c] = struct{}{}
	}
	if s.chunks.sets == nil || len(s.chunks.sets) >= maxChunkSets {
		s.chunks.sets = map[string]map[manifest.ChunkID]struct{}{}
	}
	s.chunks.sets[id] = set
	return set, nil
}
