// Package journalkey names the keys under which an agent journals
// activations, and which the controller's commands and the agent's reports
// carry as their deployment id: a deployment's own id for its stage 2, or
// "<id>~rollback.<n>" for the n-th rollback by command of deployment <id>
// (each attempt has its own key, so a retry is a new activation). Both
// sides read keys only through this package.
package journalkey

import (
	"strconv"
	"strings"
)

// sep separates a deployment's id from the rest of a rollback's key;
// deployment ids ("d-<n>") never hold it.
const sep = "~rollback."

// Rollback returns the key of attempt n of the rollback by command of
// deployment.
func Rollback(deployment string, n int) string {
	return deployment + sep + strconv.Itoa(n)
}

// Deployment returns the id of the deployment that key belongs to: key
// itself, or the deployment a rollback's key rolls back.
func Deployment(key string) string {
	id, _, _ := strings.Cut(key, sep)
	return id
}

// RollsBack says whether key is a rollback's key, and which deployment's
// activation that rollback undoes.
func RollsBack(key string) (deployment string, ok bool) {
	id, _, ok := strings.Cut(key, sep)
	return id, ok
}
