package cutoverv1

import "testing"

func TestFinal(t *testing.T) {
	final := map[DeploymentState]bool{
		DeploymentState_DEPLOYMENT_STATE_DEPLOYED: true, DeploymentState_DEPLOYMENT_STATE_FAILED: true,
		DeploymentState_DEPLOYMENT_STATE_ABORTED: true, DeploymentState_DEPLOYMENT_STATE_EXPIRED: true,
		DeploymentState_DEPLOYMENT_STATE_ROLLED_BACK: true,
	}
	for v := range DeploymentState_name {
		s := DeploymentState(v)
		if s.Final() != final[s] {
			t.Errorf("%s.Final() = %v", s, s.Final())
		}
	}
}
