package store

import (
	"bytes"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/controlplane/storecodec"
	"github.com/cutover-dev/cutover/pkg/errkind"
)

// get decodes the record under key; nil (and no error) when there is none.
func get[V any](b *bolt.Bucket, key []byte, dec func([]byte) (*V, error)) (*V, error) {
	raw := b.Get(key)
	if raw == nil {
		return nil, nil
	}
	v, err := dec(raw)
	if err != nil {
		return nil, fmt.Errorf("record %q: %w", key, err)
	}
	return v, nil
}

// put encodes v and stores it under key.
func put[V any](b *bolt.Bucket, key []byte, v *V, enc func(*V) ([]byte, error)) error {
	raw, err := enc(v)
	if err != nil {
		return fmt.Errorf("record %q: %w", key, err)
	}
	return b.Put(key, raw)
}

// list decodes every record of b, in key order (nested buckets skipped).
func list[V any](b *bolt.Bucket, dec func([]byte) (*V, error)) ([]*V, error) {
	var out []*V
	err := b.ForEach(func(k, raw []byte) error {
		if raw == nil {
			return nil // nested bucket
		}
		v, err := dec(raw)
		if err != nil {
			return fmt.Errorf("record %q: %w", k, err)
		}
		out = append(out, v)
		return nil
	})
	return out, err
}

// Environment returns the named environment; NotFound if there is none.
func (tx *Tx) Environment(name string) (*model.Environment, error) {
	e, err := get(tx.tx.Bucket(bucketEnvironments), []byte(name), storecodec.DecodeEnvironment)
	if err != nil {
		return nil, err
	}
	if e == nil {
		return nil, fmt.Errorf("environment %q does not exist; list them with `cutoverctl env list`: %w", name, errkind.NotFound)
	}
	return e, nil
}

// PutEnvironment creates or replaces an environment.
func (tx *Tx) PutEnvironment(e *model.Environment) error {
	return put(tx.tx.Bucket(bucketEnvironments), []byte(e.Name), e, storecodec.EncodeEnvironment)
}

// Environments returns every environment, sorted by name.
func (tx *Tx) Environments() ([]*model.Environment, error) {
	return list(tx.tx.Bucket(bucketEnvironments), storecodec.DecodeEnvironment)
}

// Application returns the named application; NotFound if there is none.
func (tx *Tx) Application(name string) (*model.Application, error) {
	a, err := get(tx.tx.Bucket(bucketApplications), []byte(name), storecodec.DecodeApplication)
	if err != nil {
		return nil, err
	}
	if a == nil {
		return nil, fmt.Errorf("application %q is not registered; register it with `cutoverctl app register DIR`: %w", name, errkind.NotFound)
	}
	return a, nil
}

// PutApplication creates or replaces an application.
func (tx *Tx) PutApplication(a *model.Application) error {
	return put(tx.tx.Bucket(bucketApplications), []byte(a.Name), a, storecodec.EncodeApplication)
}

// Applications returns every application, sorted by name.
func (tx *Tx) Applications() ([]*model.Application, error) {
	return list(tx.tx.Bucket(bucketApplications), storecodec.DecodeApplication)
}

// PutRelease stores a release and its canonical manifest bytes, and indexes
// it under its application. A release that exists already is left as it
// was (same id, same content): its create time stays the first build's.
func (tx *Tx) PutRelease(r *model.Release, manifest []byte) error {
	rb := tx.tx.Bucket(bucketReleases)
	if rb.Get([]byte(r.ID)) != nil {
		return nil
	}
	if err := put(rb, []byte(r.ID), r, storecodec.EncodeRelease); err != nil {
		return err
	}
	if err := tx.tx.Bucket(bucketManifests).Put([]byte(r.ID), manifest); err != nil {
		return err
	}
	idx, err := tx.tx.Bucket(bucketAppReleases).CreateBucketIfNotExists([]byte(r.Application))
	if err != nil {
		return err
	}
	return idx.Put([]byte(r.ID), u64(uint64(r.CreateTime.UnixNano())))
}

// Release returns a release's metadata; NotFound if unknown.
func (tx *Tx) Release(id string) (*model.Release, error) {
	r, err := get(tx.tx.Bucket(bucketReleases), []byte(id), storecodec.DecodeRelease)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, fmt.Errorf("release %q does not exist: %w", id, errkind.NotFound)
	}
	return r, nil
}

// Manifest returns a copy of a release's canonical manifest bytes; NotFound
// if unknown.
func (tx *Tx) Manifest(id string) ([]byte, error) {
	b := tx.tx.Bucket(bucketManifests).Get([]byte(id))
	if b == nil {
		return nil, fmt.Errorf("release %q does not exist: %w", id, errkind.NotFound)
	}
	return bytes.Clone(b), nil
}

// ReleasesOf returns the releases of an application, newest first.
func (tx *Tx) ReleasesOf(app string) ([]*model.Release, error) {
	idx := tx.tx.Bucket(bucketAppReleases).Bucket([]byte(app))
	if idx == nil {
		return nil, nil
	}
	var out []*model.Release
	err := idx.ForEach(func(k, _ []byte) error {
		r, err := tx.Release(string(k))
		if err != nil {
			return err
		}
		out = append(out, r)
		return nil
	})
	slices.SortStableFunc(out, func(a, b *model.Release) int { return b.CreateTime.Compare(a.CreateTime) })
	return out, err
}

// Agent returns an agent; NotFound if the controller never heard of it.
func (tx *Tx) Agent(name string) (*model.Agent, error) {
	a, err := get(tx.tx.Bucket(bucketAgents), []byte(name), storecodec.DecodeAgent)
	if err != nil {
		return nil, err
	}
	if a == nil {
		return nil, fmt.Errorf("agent %q is unknown: %w", name, errkind.NotFound)
	}
	return a, nil
}

// PutAgent creates or replaces an agent.
func (tx *Tx) PutAgent(a *model.Agent) error {
	return put(tx.tx.Bucket(bucketAgents), []byte(a.Name), a, storecodec.EncodeAgent)
}

// DeleteAgent forgets an agent's record (absent is fine).
func (tx *Tx) DeleteAgent(name string) error {
	return tx.tx.Bucket(bucketAgents).Delete([]byte(name))
}

// Agents returns every agent, sorted by name.
func (tx *Tx) Agents() ([]*model.Agent, error) {
	return list(tx.tx.Bucket(bucketAgents), storecodec.DecodeAgent)
}
