package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/controlplane/storecodec"
	"github.com/cutover-dev/cutover/pkg/errkind"
)

// A deployment is stored in parts (schema 6): its header (everything but
// its agents) in deployment_records/, and each agent's progress under
// deployment_agents/<n>/, keyed by the agent's position in Agents. A
// report that changes one agent rewrites that agent's small record, not a
// value holding the whole fleet.

// NextDeploymentID reserves and returns a new deployment id, "d-<n>".
func (tx *Tx) NextDeploymentID() (string, error) {
	n, err := tx.tx.Bucket(bucketDeploymentRecords).NextSequence()
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

// agentKey is the key of the agent at position i of a deployment's Agents.
func agentKey(i int) []byte {
	b := make([]byte, 4)
	binary.BigEndian.PutUint32(b, uint32(i))
	return b
}

// Deployment returns a deployment; NotFound if unknown.
func (tx *Tx) Deployment(id string) (*model.Deployment, error) {
	notFound := fmt.Errorf("deployment %q does not exist; list them with `cutoverctl deploy list`: %w", id, errkind.NotFound)
	key, ok := deploymentKey(id)
	if !ok {
		return nil, notFound
	}
	raw := tx.tx.Bucket(bucketDeploymentRecords).Get(key)
	if raw == nil {
		return nil, notFound
	}
	return tx.decodeDeployment(key, raw)
}

// decodeDeployment decodes the header stored under key and reads its agents.
func (tx *Tx) decodeDeployment(key, raw []byte) (*model.Deployment, error) {
	d, err := storecodec.DecodeDeployment(raw)
	if err != nil {
		return nil, fmt.Errorf("deployment %d: %w", binary.BigEndian.Uint64(key), err)
	}
	return d, tx.readAgents(key, d)
}

// readAgents appends to d.Agents the agent records stored under key, in
// their order, and sets d.Tally to their tally.
func (tx *Tx) readAgents(key []byte, d *model.Deployment) error {
	defer func() { d.Tally = model.TallyAgents(d.Agents) }()
	agents := tx.tx.Bucket(bucketDeploymentAgents).Bucket(key)
	if agents == nil {
		return nil
	}
	return agents.ForEach(func(k, v []byte) error {
		a, err := storecodec.DecodeDeploymentAgent(v)
		if err != nil {
			return fmt.Errorf("deployment %d, agent %d: %w", binary.BigEndian.Uint64(key), binary.BigEndian.Uint32(k), err)
		}
		d.Agents = append(d.Agents, *a)
		return nil
	})
}

// PutDeployment creates or replaces a deployment. Its id must come from
// NextDeploymentID. Only the records whose bytes change are written: the
// header (with the tally of Agents, whatever d.Tally says) if it changed,
// each agent whose progress changed; agents beyond the new end of Agents
// are deleted.
func (tx *Tx) PutDeployment(d *model.Deployment) error {
	key, ok := deploymentKey(d.ID)
	if !ok {
		return fmt.Errorf("deployment id %q is not of the form d-<n>: %w", d.ID, errkind.InvalidArgument)
	}
	raw, err := storecodec.EncodeDeployment(tallied(d))
	if err != nil {
		return fmt.Errorf("deployment %s: %w", d.ID, err)
	}
	if err := putChanged(tx.tx.Bucket(bucketDeploymentRecords), key, raw); err != nil {
		return err
	}
	agents, err := tx.tx.Bucket(bucketDeploymentAgents).CreateBucketIfNotExists(key)
	if err != nil {
		return err
	}
	return putAgents(agents, d)
}

// tallied returns a shallow copy of d whose Tally is that of its Agents:
// the header that a whole write of d stores.
func tallied(d *model.Deployment) *model.Deployment {
	h := *d
	h.Tally = model.TallyAgents(d.Agents)
	return &h
}

// putAgents writes d's agents into b where their bytes changed, and
// deletes the records past the last.
func putAgents(b *bolt.Bucket, d *model.Deployment) error {
	var scratch []byte
	for i := range d.Agents {
		var err error
		scratch, err = storecodec.AppendDeploymentAgent(scratch[:0], &d.Agents[i])
		if err != nil {
			return fmt.Errorf("deployment %s, agent %q: %w", d.ID, d.Agents[i].Name, err)
		}
		// bbolt keeps a value until the commit: only a changed one is
		// copied out of the scratch buffer.
		if k := agentKey(i); !bytes.Equal(b.Get(k), scratch) {
			if err := b.Put(k, bytes.Clone(scratch)); err != nil {
				return err
			}
		}
	}
	c := b.Cursor()
	for k, _ := c.Seek(agentKey(len(d.Agents))); k != nil; k, _ = c.Seek(agentKey(len(d.Agents))) {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// putChanged stores raw under key unless the same bytes are there already
// (a write of equal bytes would still rewrite the page).
func putChanged(b *bolt.Bucket, key, raw []byte) error {
	if bytes.Equal(b.Get(key), raw) {
		return nil
	}
	return b.Put(key, raw)
}

// Deployments returns the deployments of an environment (all if env is
// empty), newest first.
func (tx *Tx) Deployments(env string) ([]*model.Deployment, error) {
	return tx.deployments(env, true)
}

// DeploymentHeaders returns the deployments of an environment (all if env
// is empty), newest first, without their agents.
func (tx *Tx) DeploymentHeaders(env string) ([]*model.Deployment, error) {
	return tx.deployments(env, false)
}

func (tx *Tx) deployments(env string, agents bool) ([]*model.Deployment, error) {
	var out []*model.Deployment
	c := tx.tx.Bucket(bucketDeploymentRecords).Cursor()
	for k, raw := c.Last(); k != nil; k, raw = c.Prev() {
		d, err := storecodec.DecodeDeployment(raw)
		if err != nil {
			return nil, fmt.Errorf("deployment %d: %w", binary.BigEndian.Uint64(k), err)
		}
		if env != "" && d.Environment != env {
			continue
		}
		if agents {
			if err := tx.readAgents(k, d); err != nil {
				return nil, err
			}
		}
		out = append(out, d)
	}
	return out, nil
}

// DeploymentHeader returns a deployment without its agents (Agents nil);
// NotFound if unknown. It reads the header record alone.
func (tx *Tx) DeploymentHeader(id string) (*model.Deployment, error) {
	key, raw, err := tx.header(id)
	if err != nil {
		return nil, err
	}
	d, err := storecodec.DecodeDeployment(raw)
	if err != nil {
		return nil, fmt.Errorf("deployment %d: %w", binary.BigEndian.Uint64(key), err)
	}
	return d, nil
}

// header returns the key and the stored header of deployment id; NotFound
// if unknown.
func (tx *Tx) header(id string) ([]byte, []byte, error) {
	key, ok := deploymentKey(id)
	var raw []byte
	if ok {
		raw = tx.tx.Bucket(bucketDeploymentRecords).Get(key)
	}
	if raw == nil {
		return nil, nil, fmt.Errorf("deployment %q does not exist; list them with `cutoverctl deploy list`: %w", id, errkind.NotFound)
	}
	return key, raw, nil
}

// PutDeploymentHeader replaces the header of an existing deployment and
// leaves its agents as they are (d.Agents is not read); NotFound if the
// deployment does not exist.
func (tx *Tx) PutDeploymentHeader(d *model.Deployment) error {
	key, _, err := tx.header(d.ID)
	if err != nil {
		return err
	}
	raw, err := storecodec.EncodeDeployment(d)
	if err != nil {
		return fmt.Errorf("deployment %s: %w", d.ID, err)
	}
	return putChanged(tx.tx.Bucket(bucketDeploymentRecords), key, raw)
}

// DeploymentAgent returns the agent at position i of deployment id's
// Agents; NotFound if the deployment or the position does not exist.
func (tx *Tx) DeploymentAgent(id string, i int) (*model.DeploymentAgent, error) {
	key, _, err := tx.header(id)
	if err != nil {
		return nil, err
	}
	var raw []byte
	if b := tx.tx.Bucket(bucketDeploymentAgents).Bucket(key); b != nil && i >= 0 && i <= math.MaxUint32 {
		raw = b.Get(agentKey(i))
	}
	if raw == nil {
		return nil, fmt.Errorf("deployment %s has no agent at position %d: %w", id, i, errkind.NotFound)
	}
	a, err := storecodec.DecodeDeploymentAgent(raw)
	if err != nil {
		return nil, fmt.Errorf("deployment %s, agent %d: %w", id, i, err)
	}
	return a, nil
}

// PutDeploymentAgent replaces the agent at position i of deployment id's
// Agents, or appends it when i is their number, writing that record alone
// (if its bytes changed); NotFound if the deployment does not exist,
// InvalidArgument if i is past the end.
func (tx *Tx) PutDeploymentAgent(id string, i int, a *model.DeploymentAgent) error {
	key, _, err := tx.header(id)
	if err != nil {
		return err
	}
	b, err := tx.tx.Bucket(bucketDeploymentAgents).CreateBucketIfNotExists(key)
	if err != nil {
		return err
	}
	if i < 0 || i > math.MaxUint32 || i > 0 && b.Get(agentKey(i)) == nil && b.Get(agentKey(i-1)) == nil {
		return fmt.Errorf("deployment %s: agent position %d is past the end of its agents: %w", id, i, errkind.InvalidArgument)
	}
	raw, err := storecodec.EncodeDeploymentAgent(a)
	if err != nil {
		return fmt.Errorf("deployment %s, agent %q: %w", id, a.Name, err)
	}
	return putChanged(b, agentKey(i), raw)
}
