// Package journalkey reads and writes the packed form in which agents and
// controllers of agent protocol revision 0 named a rollback by command:
// "<deployment id>~rollback.<n>" for the n-th rollback by command of a
// deployment, carried as deployment_id in commands and reports, stored as
// a controller's rollback_key and as the key of an agent's activation
// journal. Today the attempt is a field of its own everywhere
// (rollback_attempt); only the edges that meet the previous version use
// this package:
//
//   - the agent protocol's conversions, which meet a peer of the previous
//     release: controlplane/agentapi (Pack for an agent of revision 0,
//     Unpack of its reports) and agent/session (Unpack of a previous
//     controller's commands). They go, with Pack, in the release after
//     the one that brought rollback_attempt, when no such peer remains;
//     so does storecodec's writing of rollback_key for a previous
//     controller that shares the store.
//   - the readers of what previous versions stored: controlplane/storecodec
//     (rollback_key of a deployment record), controlplane/store's schema 5
//     migration and agent/store's migration 4 → 5 (the agent's journal).
//     Unpack stays for them as long as they read stores of that age.
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
