package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/pkg/errkind"
)

func getJSON(b *bolt.Bucket, key []byte, v any) (bool, error) {
	raw := b.Get(key)
	if raw == nil {
		return false, nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return true, fmt.Errorf("decode record %q: %w: %v", key, errkind.DataLoss, err)
	}
	return true, nil
}

func putJSON(b *bolt.Bucket, key []byte, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(key, raw)
}

func listJSON[T any](b *bolt.Bucket) ([]*T, error) {
	var out []*T
	err := b.ForEach(func(k, raw []byte) error {
		if raw == nil {
			return nil // nested bucket
		}
		v := new(T)
		if err := json.Unmarshal(raw, v); err != nil {
			return fmt.Errorf("decode %s: %w: %v", k, errkind.DataLoss, err)
		}
		out = append(out, v)
		return nil
	})
	return out, err
}

// Environment returns the named environment; NotFound if there is none.
func (tx *Tx) Environment(name string) (*model.Environment, error) {
	e := new(model.Environment)
	ok, err := getJSON(tx.tx.Bucket(bucketEnvironments), []byte(name), e)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("environment %q does not exist; list them with `cutoverctl env list`: %w", name, errkind.NotFound)
	}
	return e, nil
}

// PutEnvironment creates or replaces an environment.
func (tx *Tx) PutEnvironment(e *model.Environment) error {
	return putJSON(tx.tx.Bucket(bucketEnvironments), []byte(e.Name), e)
}

// Environments returns every environment, sorted by name.
func (tx *Tx) Environments() ([]*model.Environment, error) {
	return listJSON[model.Environment](tx.tx.Bucket(bucketEnvironments))
}

// Application returns the named application; NotFound if there is none.
func (tx *Tx) Application(name string) (*model.Application, error) {
	a := new(model.Application)
	ok, err := getJSON(tx.tx.Bucket(bucketApplications), []byte(name), a)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("application %q is not registered; register it with `cutoverctl app register DIR`: %w", name, errkind.NotFound)
	}
	return a, nil
}

// PutApplication creates or replaces an application.
func (tx *Tx) PutApplication(a *model.Application) error {
	return putJSON(tx.tx.Bucket(bucketApplications), []byte(a.Name), a)
}

// Applications returns every application, sorted by name.
func (tx *Tx) Applications() ([]*model.Application, error) {
	return listJSON[model.Application](tx.tx.Bucket(bucketApplications))
}

// PutRelease stores a release and its canonical manifest bytes, and indexes
// it under its application. A release that exists already is left as it
// was (same id, same content): its create time stays the first build's.
func (tx *Tx) PutRelease(r *model.Release, manifest []byte) error {
	rb := tx.tx.Bucket(bucketReleases)
	if rb.Get([]byte(r.ID)) != nil {
		return nil
	}
	if err := putJSON(rb, []byte(r.ID), r); err != nil {
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
	r := new(model.Release)
	ok, err := getJSON(tx.tx.Bucket(bucketReleases), []byte(id), r)
	if err != nil {
		return nil, err
	}
	if !ok {
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

// NextDeploymentID reserves and returns a new deployment id, "d-<n>".
func (tx *Tx) NextDeploymentID() (string, error) {
	n, err := tx.tx.Bucket(bucketDeployments).NextSequence()
	if err != nil {
		return "", err
	}
	return "d-" + strconv.FormatUint(n, 10), nil
}

// deploymentKey turns "d-<n>" into its big-endian key.
func deploymentKey(id string) ([]byte, bool) {
	s, ok := strings.CutPrefix(id, "d-")
	if !ok {
		return nil, false
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n == 0 || "d-"+strconv.FormatUint(n, 10) != id {
		return nil, false
	}
	return u64(n), true
}

// Deployment returns a deployment; NotFound if unknown.
func (tx *Tx) Deployment(id string) (*model.Deployment, error) {
	notFound := fmt.Errorf("deployment %q does not exist; list them with `cutoverctl deploy list`: %w", id, errkind.NotFound)
	key, ok := deploymentKey(id)
	if !ok {
		return nil, notFound
	}
	d := new(model.Deployment)
	found, err := getJSON(tx.tx.Bucket(bucketDeployments), key, d)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, notFound
	}
	return d, nil
}

// PutDeployment creates or replaces a deployment. Its id must come from
// NextDeploymentID.
func (tx *Tx) PutDeployment(d *model.Deployment) error {
	key, ok := deploymentKey(d.ID)
	if !ok {
		return fmt.Errorf("deployment id %q is not of the form d-<n>: %w", d.ID, errkind.InvalidArgument)
	}
	return putJSON(tx.tx.Bucket(bucketDeployments), key, d)
}

// Deployments returns the deployments of an environment (all if env is
// empty), newest first.
func (tx *Tx) Deployments(env string) ([]*model.Deployment, error) {
	var out []*model.Deployment
	c := tx.tx.Bucket(bucketDeployments).Cursor()
	for k, raw := c.Last(); k != nil; k, raw = c.Prev() {
		d := new(model.Deployment)
		if err := json.Unmarshal(raw, d); err != nil {
			return nil, fmt.Errorf("decode deployment %d: %w: %v", binary.BigEndian.Uint64(k), errkind.DataLoss, err)
		}
		if env == "" || d.Environment == env {
			out = append(out, d)
		}
	}
	return out, nil
}

// Agent returns an agent; NotFound if the controller never heard of it.
func (tx *Tx) Agent(name string) (*model.Agent, error) {
	a := new(model.Agent)
	ok, err := getJSON(tx.tx.Bucket(bucketAgents), []byte(name), a)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("agent %q is unknown: %w", name, errkind.NotFound)
	}
	return a, nil
}

// PutAgent creates or replaces an agent.
func (tx *Tx) PutAgent(a *model.Agent) error {
	return putJSON(tx.tx.Bucket(bucketAgents), []byte(a.Name), a)
}

// DeleteAgent forgets an agent's record (absent is fine).
func (tx *Tx) DeleteAgent(name string) error {
	return tx.tx.Bucket(bucketAgents).Delete([]byte(name))
}

// Agents returns every agent, sorted by name.
func (tx *Tx) Agents() ([]*model.Agent, error) {
	return listJSON[model.Agent](tx.tx.Bucket(bucketAgents))
}
