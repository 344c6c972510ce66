package store

import (
	"fmt"

	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/pkg/manifest"
)

// Collected says what CollectGarbage deleted.
type Collected struct {
	// Releases and Chunks are how many were deleted; ChunkBytes their size.
	Releases, Chunks int
	ChunkBytes       int64
	// Skipped is set when a build was in progress: nothing was deleted,
	// since the chunks of a release being built are stored before it is.
	Skipped bool
}

// CollectGarbage deletes the releases that nothing needs any more, and then
// every chunk that no remaining release references, in one transaction. A
// release is kept when it is one of the keep newest releases of its
// application that a deployment installed (DEPLOYED: what an operator may
// want back), when an environment runs it, or when a deployment that has
// not ended names it (to deploy, or as the release to go back to). A
// release that only failed, aborted or expired deployments name is deleted.
func (s *Store) CollectGarbage(keep int) (Collected, error) {
	var c Collected
	err := s.update(func(tx *Tx) error {
		rs, building, err := UnneededReleases(tx, keep)
		if err != nil || building {
			c.Skipped = building
			return err
		}
		for _, r := range rs {
			if err := tx.deleteRelease(r); err != nil {
				return err
			}
			c.Releases++
		}
		return tx.collectChunks(&c)
	})
	return c, err
}

// UnneededReleases returns the releases that CollectGarbage deletes (its
// comment says which), or building true when a build is in progress
// (nothing may be deleted then). Every store's collection uses it.
func UnneededReleases(tx model.Tx, keep int) (unneeded []*model.Release, building bool, err error) {
	needed := map[string]bool{}
	ds, err := tx.DeploymentHeaders("") // states and applications: no agent is read
	if err != nil {
		return nil, false, err
	}
	installed := map[string]bool{}
	for _, d := range ds {
		if d.State == model.Deployed {
			for _, a := range d.Applications {
				installed[a.ReleaseID] = true
			}
		}
		if d.State.Final() {
			continue
		}
		for _, a := range d.Applications {
			if a.ReleaseID == "" && d.State == model.Preparing {
				return nil, true, nil
			}
			needed[a.ReleaseID], needed[a.PreviousReleaseID] = true, true
		}
	}
	envs, err := tx.Environments()
	if err != nil {
		return nil, false, err
	}
	for _, e := range envs {
		for _, v := range e.DeployedVersions {
			needed[v.ReleaseID] = true
		}
	}
	apps, err := tx.Applications()
	if err != nil {
		return nil, false, err
	}
	for _, a := range apps {
		rs, err := tx.ReleasesOf(a.Name)
		if err != nil {
			return nil, false, err
		}
		kept := 0
		for _, r := range rs { // newest first
			if installed[r.ID] && kept < keep {
				kept++
				continue
			}
			if !needed[r.ID] {
				unneeded = append(unneeded, r)
			}
		}
	}
	return unneeded, false, nil
}

// deleteRelease removes a release, its manifest and its index entry.
func (tx *Tx) deleteRelease(r *model.Release) error {
	if err := tx.tx.Bucket(bucketReleases).Delete([]byte(r.ID)); err != nil {
		return err
	}
	if err := tx.tx.Bucket(bucketManifests).Delete([]byte(r.ID)); err != nil {
		return err
	}
	if idx := tx.tx.Bucket(bucketAppReleases).Bucket([]byte(r.Application)); idx != nil {
		return idx.Delete([]byte(r.ID))
	}
	return nil
}

// collectChunks deletes the chunks that no stored manifest references.
func (tx *Tx) collectChunks(c *Collected) error {
	used := map[manifest.ChunkID]bool{}
	err := tx.tx.Bucket(bucketManifests).ForEach(func(k, v []byte) error {
		m, err := manifest.Decode(v)
		if err != nil {
			return fmt.Errorf("manifest of release %s: %w; no chunk was deleted", k, err)
		}
		for _, id := range m.ChunkIDs() {
			used[id] = true
		}
		return nil
	})
	if err != nil {
		return err
	}
	c.Chunks, c.ChunkBytes, err = tx.deleteChunks(func(id manifest.ChunkID) bool { return !used[id] })
	return err
}

// DeleteChunksExcept deletes, in one transaction, every stored chunk that
// used does not hold, and says how many and how many bytes: the chunk
// collection of a store that keeps its manifests elsewhere (etcd) and its
// chunks here.
func (s *Store) DeleteChunksExcept(used map[manifest.ChunkID]bool) (n int, size int64, err error) {
	err = s.update(func(tx *Tx) error {
		n, size, err = tx.deleteChunks(func(id manifest.ChunkID) bool { return !used[id] })
		return err
	})
	return n, size, err
}
