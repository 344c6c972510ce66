package etcdstore

import (
	"encoding/binary"
	"fmt"

	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/controlplane/storecodec"
	"github.com/cutover-dev/cutover/pkg/errkind"
)

// The per-agent accessors read and write one group of AgentsPerKey agents:
// an agent's report costs one group key, read and rewritten, whatever the
// size of the fleet. The group's key is in the transaction's read set, so
// two controllers that change agents of one group conflict at commit (one
// of them fails with errkind.Aborted), while changes of agents of
// different groups do not.

// DeploymentHeader returns a deployment without its agents (Agents nil);
// NotFound if unknown.
func (tx *Tx) DeploymentHeader(id string) (*model.Deployment, error) {
	n, raw, err := tx.header(id)
	if err != nil {
		return nil, err
	}
	d, err := storecodec.DecodeDeployment(raw)
	if err != nil {
		return nil, fmt.Errorf("deployment %d: %w", n, err)
	}
	return d, nil
}

// header returns the number and the stored header of deployment id;
// NotFound if unknown.
func (tx *Tx) header(id string) (uint64, []byte, error) {
	notFound := fmt.Errorf("deployment %q does not exist; list them with `cutoverctl deploy list`: %w", id, errkind.NotFound)
	n, ok := deploymentNumber(id)
	if !ok {
		return 0, nil, notFound
	}
	raw, found, err := tx.get(numbered(collDeployments, n))
	if err != nil {
		return 0, nil, err
	}
	if !found {
		return 0, nil, notFound
	}
	return n, raw, nil
}

// PutDeploymentHeader replaces the header of an existing deployment and
// leaves its agents as they are (d.Agents is not read); NotFound if the
// deployment does not exist.
func (tx *Tx) PutDeploymentHeader(d *model.Deployment) error {
	n, _, err := tx.header(d.ID)
	if err != nil {
		return err
	}
	raw, err := storecodec.EncodeDeployment(d)
	if err != nil {
		return fmt.Errorf("deployment %s: %w", d.ID, err)
	}
	return tx.putChanged(numbered(collDeployments, n), raw)
}

// DeploymentAgent returns the agent at position i of deployment id's
// Agents; NotFound if the deployment or the position does not exist.
func (tx *Tx) DeploymentAgent(id string, i int) (*model.DeploymentAgent, error) {
	n, _, err := tx.header(id)
	if err != nil {
		return nil, err
	}
	var recs [][]byte
	if i >= 0 {
		if recs, _, err = tx.group(n, i/AgentsPerKey); err != nil {
			return nil, err
		}
	}
	if i < 0 || i%AgentsPerKey >= len(recs) {
		return nil, fmt.Errorf("deployment %s has no agent at position %d: %w", id, i, errkind.NotFound)
	}
	a, err := storecodec.DecodeDeploymentAgent(recs[i%AgentsPerKey])
	if err != nil {
		return nil, fmt.Errorf("deployment %s, agent %d: %w", id, i, err)
	}
	return a, nil
}

// PutDeploymentAgent replaces the agent at position i of deployment id's
// Agents, or appends it when i is their number, rewriting its group alone
// (if its bytes changed); NotFound if the deployment does not exist,
// InvalidArgument if i is past the end.
func (tx *Tx) PutDeploymentAgent(id string, i int, a *model.DeploymentAgent) error {
	n, _, err := tx.header(id)
	if err != nil {
		return err
	}
	pastEnd := fmt.Errorf("deployment %s: agent position %d is past the end of its agents: %w", id, i, errkind.InvalidArgument)
	if i < 0 {
		return pastEnd
	}
	g, j := i/AgentsPerKey, i%AgentsPerKey
	recs, raw, err := tx.group(n, g)
	if err != nil {
		return err
	}
	if j > len(recs) {
		return pastEnd
	}
	if j == 0 && len(recs) == 0 && g > 0 { // a new group: the one before must be full
		prev, _, err := tx.group(n, g-1)
		if err != nil {
			return err
		}
		if len(prev) < AgentsPerKey {
			return pastEnd
		}
	}
	rec, err := storecodec.EncodeDeploymentAgent(a)
	if err != nil {
		return fmt.Errorf("deployment %s, agent %q: %w", id, a.Name, err)
	}
	if j == len(recs) {
		recs = append(recs, rec)
	} else {
		recs[j] = rec
	}
	b := make([]byte, 0, len(raw)+len(rec))
	for _, r := range recs {
		b = append(binary.AppendUvarint(b, uint64(len(r))), r...)
	}
	return tx.putChanged(groupKey(n, g), b)
}

// group returns the agent records of group g of deployment n, each still
// encoded, and the group's stored bytes; none if the group does not exist.
func (tx *Tx) group(n uint64, g int) ([][]byte, []byte, error) {
	key := groupKey(n, g)
	raw, found, err := tx.get(key)
	if err != nil || !found {
		return nil, nil, err
	}
	recs, err := splitGroup(key, raw)
	return recs, raw, err
}

// splitGroup returns the records of the group stored under key, each
// still encoded (slices of raw).
func splitGroup(key string, raw []byte) ([][]byte, error) {
	var recs [][]byte
	for b := raw; len(b) > 0; {
		size, k := binary.Uvarint(b)
		if k <= 0 || size > uint64(len(b)-k) {
			return nil, fmt.Errorf("agents record %s is cut short: %w", key, errkind.DataLoss)
		}
		recs, b = append(recs, b[k:k+int(size)]), b[k+int(size):]
	}
	return recs, nil
}
