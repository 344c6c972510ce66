package etcdstore

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"maps"
	"slices"

	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/controlplane/storecodec"
	"github.com/cutover-dev/cutover/pkg/errkind"
)

// A deployment is stored in parts: its header (storecodec.EncodeDeployment,
// without agents) under deployments/<n>, and its agents' progress in
// groups of AgentsPerKey under deployment_agents/<n>/<group>, each group
// the agents' records (storecodec.EncodeDeploymentAgent) one after the
// other, each preceded by its length (uvarint). PutDeployment writes only
// the parts whose bytes changed: an agent's report rewrites one group.
// Groups rather than one key per agent, so that a deployment of a few
// thousand front-ends is written whole within --max-txn-ops (AgentsPerKey ×
// 120 agents at the default 128).

// AgentsPerKey is how many agents of a deployment one key holds.
const AgentsPerKey = 32

func agentsPrefix(n uint64) string { return numbered(collDeplAgents, n) + "/" }

func groupKey(n uint64, g int) string { return fmt.Sprintf("%s%06d", agentsPrefix(n), g) }

// Deployment returns a deployment; NotFound if unknown.
func (tx *Tx) Deployment(id string) (*model.Deployment, error) {
	notFound := fmt.Errorf("deployment %q does not exist; list them with `cutoverctl deploy list`: %w", id, errkind.NotFound)
	n, ok := deploymentNumber(id)
	if !ok {
		return nil, notFound
	}
	raw, found, err := tx.get(numbered(collDeployments, n))
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, notFound
	}
	d, err := storecodec.DecodeDeployment(raw)
	if err != nil {
		return nil, fmt.Errorf("deployment %d: %w", n, err)
	}
	return d, tx.readAgents(n, d)
}

// readAgents appends deployment n's agents to d.Agents and sets d.Tally
// to their tally.
func (tx *Tx) readAgents(n uint64, d *model.Deployment) error {
	groups, err := tx.list(agentsPrefix(n), false)
	if err != nil {
		return err
	}
	for _, g := range groups {
		if d.Agents, err = decodeAgents(d.Agents, g); err != nil {
			return err
		}
	}
	d.Tally = model.TallyAgents(d.Agents)
	return nil
}

// decodeAgents appends the agents of a group to as.
func decodeAgents(as []model.DeploymentAgent, g kv) ([]model.DeploymentAgent, error) {
	recs, err := splitGroup(g.key, g.val)
	if err != nil {
		return as, err
	}
	for _, rec := range recs {
		a, err := storecodec.DecodeDeploymentAgent(rec)
		if err != nil {
			return as, fmt.Errorf("agents record %s: %w", g.key, err)
		}
		as = append(as, *a)
	}
	return as, nil
}

// PutDeployment creates or replaces a deployment whose id came from
// NextDeploymentID, writing the parts whose bytes changed; the header
// holds the tally of Agents, whatever d.Tally says.
func (tx *Tx) PutDeployment(d *model.Deployment) error {
	n, ok := deploymentNumber(d.ID)
	if !ok {
		return fmt.Errorf("deployment id %q is not of the form d-<n>: %w", d.ID, errkind.InvalidArgument)
	}
	h := *d
	h.Tally = model.TallyAgents(d.Agents)
	raw, err := storecodec.EncodeDeployment(&h)
	if err != nil {
		return fmt.Errorf("deployment %s: %w", d.ID, err)
	}
	if err := tx.putChanged(numbered(collDeployments, n), raw); err != nil {
		return err
	}
	stored, err := tx.list(agentsPrefix(n), false)
	if err != nil {
		return err
	}
	had := map[string][]byte{}
	for _, g := range stored {
		had[g.key] = g.val
	}
	for g := range (len(d.Agents) + AgentsPerKey - 1) / AgentsPerKey {
		var b []byte
		for i := g * AgentsPerKey; i < min(len(d.Agents), (g+1)*AgentsPerKey); i++ {
			rec, err := storecodec.EncodeDeploymentAgent(&d.Agents[i])
			if err != nil {
				return fmt.Errorf("deployment %s, agent %q: %w", d.ID, d.Agents[i].Name, err)
			}
			b = append(binary.AppendUvarint(b, uint64(len(rec))), rec...)
		}
		key := groupKey(n, g)
		if old, ok := had[key]; !ok || !bytes.Equal(old, b) {
			if err := tx.put(key, b); err != nil {
				return err
			}
		}
		delete(had, key)
	}
	for _, key := range slices.Sorted(maps.Keys(had)) {
		if err := tx.del(key); err != nil { // groups past the new end
			return err
		}
	}
	return nil
}

// putChanged writes raw under rel unless the same bytes are there.
func (tx *Tx) putChanged(rel string, raw []byte) error {
	old, ok, err := tx.get(rel)
	if err != nil || ok && bytes.Equal(old, raw) {
		return err
	}
	return tx.put(rel, raw)
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
	kvs, err := tx.list(collDeployments+"/", false)
	if err != nil {
		return nil, err
	}
	var out []*model.Deployment
	for _, e := range slices.Backward(kvs) {
		var n uint64
		if _, err := fmt.Sscanf(e.key, collDeployments+"/%d", &n); err != nil {
			return nil, fmt.Errorf("deployment key %s: %w: %v", e.key, errkind.DataLoss, err)
		}
		d, err := storecodec.DecodeDeployment(e.val)
		if err != nil {
			return nil, fmt.Errorf("deployment %d: %w", n, err)
		}
		if env != "" && d.Environment != env {
			continue
		}
		if agents {
			if err := tx.readAgents(n, d); err != nil {
				return nil, err
			}
		}
		out = append(out, d)
	}
	return out, nil
}
