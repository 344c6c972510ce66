package cutoverv1

// Final reports whether a deployment never leaves state s (DEPLOYED,
// FAILED, ABORTED, EXPIRED, ROLLED_BACK), as the API defines the states:
// what clients that follow a deployment wait for. Written by hand beside
// the generated code.
func (s DeploymentState) Final() bool {
	switch s {
	case DeploymentState_DEPLOYMENT_STATE_DEPLOYED,
		DeploymentState_DEPLOYMENT_STATE_FAILED,
		DeploymentState_DEPLOYMENT_STATE_ABORTED,
		DeploymentState_DEPLOYMENT_STATE_EXPIRED,
		DeploymentState_DEPLOYMENT_STATE_ROLLED_BACK:
		return true
	}
	return false
}
