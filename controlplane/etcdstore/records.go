package etcdstore

import (
	"cmp"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/controlplane/storecodec"
	"github.com/cutover-dev/cutover/pkg/errkind"
)

// Collections: the first segment of every key, declared once.
const (
	collEnvironments = "environments"
	collApplications = "applications"
	collReleases     = "releases"
	collManifests    = "manifests"
	collParts        = "manifest_parts"
	collAppReleases  = "app_releases"
	collDeployments  = "deployments"
	collDeplAgents   = "deployment_agents"
	collSQLPlans     = "sql_plans"
	collAgents       = "agents"
	collTokens       = "tokens"
	collJoinTokens   = "join_tokens"
	collEnrollments  = "enrollments"
	collAudit        = "audit"
	keyDeploymentSeq = "meta/deployment_seq"
)

// named is the key of a named record of coll.
func named(coll, name string) string { return coll + "/" + url.PathEscape(name) }

// numbered is the key of record n of coll: zero-padded so that keys sort
// as numbers.
func numbered(coll string, n uint64) string { return fmt.Sprintf("%s/%020d", coll, n) }

// getRecord reads and decodes the record under rel; notFound when there
// is none.
func getRecord[T any](tx *Tx, rel string, dec func([]byte) (*T, error), notFound error) (*T, error) {
	raw, ok, err := tx.get(rel)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, notFound
	}
	return decodeAt(rel, raw, dec)
}

// putRecord encodes v and writes it under rel.
func putRecord[T any](tx *Tx, rel string, v *T, enc func(*T) ([]byte, error)) error {
	raw, err := enc(v)
	if err != nil {
		return fmt.Errorf("record %s: %w", rel, err)
	}
	return tx.put(rel, raw)
}

// listRecords returns the records of coll sorted by name.
func listRecords[T any](tx *Tx, coll string, dec func([]byte) (*T, error), name func(*T) string) ([]*T, error) {
	kvs, err := tx.list(coll+"/", false)
	if err != nil {
		return nil, err
	}
	out := make([]*T, 0, len(kvs))
	for _, e := range kvs {
		v, err := decodeAt(e.key, e.val, dec)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b *T) int { return cmp.Compare(name(a), name(b)) })
	return out, nil
}

// decodeAt decodes the record read under key, naming the key on error.
func decodeAt[T any](key string, raw []byte, dec func([]byte) (*T, error)) (*T, error) {
	v, err := dec(raw)
	if err != nil {
		return nil, fmt.Errorf("record %s: %w", key, err)
	}
	return v, nil
}

// Environment returns the named environment; NotFound if there is none.
func (tx *Tx) Environment(name string) (*model.Environment, error) {
	return getRecord(tx, named(collEnvironments, name), storecodec.DecodeEnvironment,
		fmt.Errorf("environment %q does not exist; list them with `cutoverctl env list`: %w", name, errkind.NotFound))
}

// PutEnvironment creates or replaces an environment.
func (tx *Tx) PutEnvironment(e *model.Environment) error {
	return putRecord(tx, named(collEnvironments, e.Name), e, storecodec.EncodeEnvironment)
}

// Environments returns every environment, sorted by name.
func (tx *Tx) Environments() ([]*model.Environment, error) {
	return listRecords(tx, collEnvironments, storecodec.DecodeEnvironment, func(e *model.Environment) string { return e.Name })
}

// Application returns the named application; NotFound if there is none.
func (tx *Tx) Application(name string) (*model.Application, error) {
	return getRecord(tx, named(collApplications, name), storecodec.DecodeApplication,
		fmt.Errorf("application %q is not registered; register it with `cutoverctl app register DIR`: %w", name, errkind.NotFound))
}

// PutApplication creates or replaces an application.
func (tx *Tx) PutApplication(a *model.Application) error {
	return putRecord(tx, named(collApplications, a.Name), a, storecodec.EncodeApplication)
}

// Applications returns every application, sorted by name.
func (tx *Tx) Applications() ([]*model.Application, error) {
	return listRecords(tx, collApplications, storecodec.DecodeApplication, func(a *model.Application) string { return a.Name })
}

// NextDeploymentID reserves a new deployment id, "d-<n>", with a counter
// key written in the same transaction.
func (tx *Tx) NextDeploymentID() (string, error) {
	raw, ok, err := tx.get(keyDeploymentSeq)
	if err != nil {
		return "", err
	}
	var n uint64
	if ok {
		if n, err = strconv.ParseUint(string(raw), 10, 64); err != nil {
			return "", fmt.Errorf("decode %s: %w: %v", keyDeploymentSeq, errkind.DataLoss, err)
		}
	}
	n++
	if err := tx.put(keyDeploymentSeq, []byte(strconv.FormatUint(n, 10))); err != nil {
		return "", err
	}
	return "d-" + strconv.FormatUint(n, 10), nil
}

// deploymentNumber turns "d-<n>" into n.
func deploymentNumber(id string) (uint64, bool) {
	s, ok := strings.CutPrefix(id, "d-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n == 0 || "d-"+strconv.FormatUint(n, 10) != id {
		return 0, false
	}
	return n, true
}

// PutSQLPlan keeps a deployment's SQL plan, opaque bytes.
func (tx *Tx) PutSQLPlan(id string, plan []byte) error {
	n, ok := deploymentNumber(id)
	if !ok {
		return fmt.Errorf("deployment id %q is not of the form d-<n>: %w", id, errkind.InvalidArgument)
	}
	return tx.put(numbered(collSQLPlans, n), plan)
}

// SQLPlan returns a copy of deployment id's SQL plan; NotFound if none.
func (tx *Tx) SQLPlan(id string) ([]byte, error) {
	var raw []byte
	ok := false
	if n, valid := deploymentNumber(id); valid {
		var err error
		if raw, ok, err = tx.get(numbered(collSQLPlans, n)); err != nil {
			return nil, err
		}
	}
	if !ok {
		return nil, fmt.Errorf("deployment %q has no SQL plan: it has not been prepared: %w", id, errkind.NotFound)
	}
	return slices.Clone(raw), nil
}

// Agent returns an agent; NotFound if the controller never heard of it.
func (tx *Tx) Agent(name string) (*model.Agent, error) {
	return getRecord(tx, named(collAgents, name), storecodec.DecodeAgent, fmt.Errorf("agent %q is unknown: %w", name, errkind.NotFound))
}

// PutAgent creates or replaces an agent.
func (tx *Tx) PutAgent(a *model.Agent) error {
	return putRecord(tx, named(collAgents, a.Name), a, storecodec.EncodeAgent)
}

// DeleteAgent forgets an agent's record (absent is fine).
func (tx *Tx) DeleteAgent(name string) error { return tx.del(named(collAgents, name)) }

// Agents returns every agent, sorted by name.
func (tx *Tx) Agents() ([]*model.Agent, error) {
	return listRecords(tx, collAgents, storecodec.DecodeAgent, func(a *model.Agent) string { return a.Name })
}
