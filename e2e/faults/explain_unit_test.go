package faults

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

func TestDescribeDeployment(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	d := &cutoverv1.Deployment{Id: "d-1", State: cutoverv1.DeploymentState_DEPLOYMENT_STATE_ACTIVATING, Step: "commit",
		StepDeadline: timestamppb.New(now.Add(-30 * time.Second)),
		Agents: []*cutoverv1.DeploymentAgent{
			{Name: "fe-1", State: cutoverv1.AgentDeploymentState_AGENT_DEPLOYMENT_STATE_ACTIVE, SwapTime: timestamppb.New(now.Add(-40 * time.Second))},
			{Name: "fe-3", State: cutoverv1.AgentDeploymentState_AGENT_DEPLOYMENT_STATE_ACTIVATING},
		},
		History: []*cutoverv1.DeploymentTransition{{State: cutoverv1.DeploymentState_DEPLOYMENT_STATE_ACTIVATING, Time: timestamppb.New(now.Add(-time.Minute)), Actor: "op", Message: "stage 2"}}}
	got := describeDeployment(d, now)
	for _, want := range []string{`d-1: state ACTIVATING, step "commit", step deadline passed 30s ago`, "agent fe-1: ACTIVE, swapped at 03:03:25.000", "agent fe-3: ACTIVATING", "history 03:03:05.000 ACTIVATING (op): stage 2"} {
		if !strings.Contains(got, want) {
			t.Errorf("describeDeployment lacks %q:\n%s", want, got)
		}
	}
	d.Step, d.StepDeadline = "sql", nil
	if got := describeDeployment(d, now); !strings.Contains(got, "no step deadline") {
		t.Errorf("describeDeployment in the sql step:\n%s", got)
	}
}

func TestWaitingInCutover(t *testing.T) {
	dump := `goroutine 1 [running]:
main.main()
	/src/main.go:1

goroutine 7 [sync.Mutex.Lock, 2 minutes]:
sync.runtime_SemacquireMutex(0x0?, 0x0?, 0x0?)
	/go/src/runtime/sema.go:95 +0x25
github.com/cutover-dev/cutover/controlplane/fleet.(*Fleet).Connected(0xc000)
	/src/controlplane/fleet/fleet.go:362 +0x45
github.com/cutover-dev/cutover/controlplane/deployment.(*Service).take(0xc000)
	/src/controlplane/deployment/run.go:445 +0x45

goroutine 9 [chan receive]:
github.com/cutover-dev/cutover/controlplane/deployment.(*Service).Run(0xc000)
	/src/controlplane/deployment/run.go:40 +0x45
`
	got := waitingInCutover(dump)
	if len(got) != 1 || !strings.Contains(got[0], "goroutine 7 [sync.Mutex.Lock, 2 minutes]:") || !strings.Contains(got[0], "fleet.(*Fleet).Connected") ||
		!strings.Contains(got[0], "deployment.(*Service).take") {
		t.Errorf("waitingInCutover = %q", got)
	}
}
