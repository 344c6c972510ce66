package deployment

import (
	"time"

	"github.com/cutover-dev/cutover/controlplane/model"
)

// These say whether a request would be refused for the deployment's state,
// as it and its environment stand: nil, or the FailedPrecondition (or,
// for CanApprove, PermissionDenied) error the request would return. Pages
// ask them before they show a button (CanRollback is in rollback.go); the
// requests check again, with what they alone know (the other deployments
// of the environment, the connected agents, the deployment windows).

// CanPrepare says whether d can be prepared: it is PLANNED and env deploys
// in two stages.
func CanPrepare(d *model.Deployment, env *model.Environment) error {
	return checkPrepare(d, env, nil)
}

// CanStart says whether d can be started (both stages): it is PLANNED.
// Start also checks the approval and the deployment windows.
func CanStart(d *model.Deployment) error {
	return checkStartable(d, nil, "start")
}

// CanContinue says whether stage 2 of d can start at now, approval and
// deployment windows aside: it is PREPARED and has not expired.
// NeedsApproval says whether the approval is missing.
func CanContinue(d *model.Deployment, now time.Time) error {
	return checkContinuable(d, now)
}

// NeedsApproval says whether env requires an approval before stage 2 of d
// and d has none.
func NeedsApproval(d *model.Deployment, env *model.Environment) bool {
	return checkApproval(d, env) != nil
}

// CanApprove says whether actor may approve d: it is PLANNED, PREPARING
// or PREPARED, not approved yet, and actor neither created nor prepared it.
func CanApprove(d *model.Deployment, actor string) error {
	return checkApprove(d, actor)
}

// CanAbort says whether d can be aborted: stage 2 has not started.
func CanAbort(d *model.Deployment) error {
	return checkAbort(d)
}

// CanExtend says whether d's expiry can be moved at now: it is PREPARED
// and has not expired.
func CanExtend(d *model.Deployment, now time.Time) error {
	return checkExtend(d, 1, now) // any positive duration: only d's state is asked about
}

// CanCancelSchedule says whether d has a scheduled continue to cancel.
func CanCancelSchedule(d *model.Deployment) error {
	return checkCancelSchedule(d)
}
