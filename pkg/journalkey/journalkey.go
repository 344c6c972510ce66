// Package journalkey reads and writes the packed form in which agents and
// controllers of agent protocol revision 0 named a rollback by command:
// "<deployment id>~rollback.<n>" for the n-th rollback by command of a
// deployment, carried as deployment_id in commands and reports, stored as
// a controller's rollback_key and as the key of an agent's activation
// journal. Today the attempt is a field of its own everywhere
// (rollback_attempt); only the edges that meet the previous version use
// this package: the agent protocol's conversions on each side
// (controlplane/agentapi, agent/session), the controller's record decoder
// (controlplane/storecodec, controlplane/store's schema 5 migration) and
// the agent store's migration of its journal (agent/store, schema 5).
//
// Delete it, with those uses, in the release after the one that brought
// rollback_attempt: by then no agent of revision 0, controller of the
// previous release or unmigrated store remains.
package journalkey

import (
	"strconv"
	"strings"
)

// sep separates a deployment's id from the attempt; deployment ids
// ("d-<n>") never hold it.
const sep = "~rollback."

// Pack returns the packed form of attempt of deployment: deployment itself
// for attempt 0 (its own stage 2), "<deployment>~rollback.<attempt>" for a
// rollback by command.
func Pack(deployment string, attempt int) string {
	if attempt <= 0 {
		return deployment
	}
	return deployment + sep + strconv.Itoa(attempt)
}

// Unpack reads the packed form: the deployment's id and the attempt (0
// when key is a plain deployment id). A key whose tail is not a positive
// number is not packed: it is returned whole, attempt 0.
func Unpack(key string) (deployment string, attempt int) {
	id, tail, ok := strings.Cut(key, sep)
	if !ok {
		return key, 0
	}
	n, err := strconv.Atoi(tail)
	if err != nil || n <= 0 || strconv.Itoa(n) != tail {
		return key, 0
	}
	return id, n
}

// Rollback returns the key of attempt n of the rollback by command of
// deployment. Deprecated: use Pack.
func Rollback(deployment string, n int) string { return Pack(deployment, n) }

// Deployment returns the id of the deployment that key belongs to.
// Deprecated: use Unpack.
func Deployment(key string) string {
	id, _, _ := strings.Cut(key, sep)
	return id
}

// RollsBack says whether key is a rollback's key, and which deployment's
// activation that rollback undoes. Deprecated: use Unpack.
func RollsBack(key string) (deployment string, ok bool) {
	id, _, ok := strings.Cut(key, sep)
	return id, ok
}
