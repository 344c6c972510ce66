package guard

import (
	"google.golang.org/protobuf/proto"

	"github.com/cutover-dev/cutover/controlplane/auth"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// target says what a request acts on: an environment named in it, a
// deployment (whose environment the Resolver finds), or nothing in
// particular (global).
type target struct {
	env, deployment string
	global          bool
}

// rule is how the guard treats one method.
type rule struct {
	action auth.Action
	// peer is the action when another controller of this CA calls
	// (auth.Mirror); 0: controllers may not call it.
	peer auth.Action
	// mutating calls are audited whether or not they were allowed; reads
	// only when refused.
	mutating bool
	// open methods need no credential (Enroll: the join token in the
	// request is checked by auth.Service.Enroll).
	open bool
	// target extracts what the request acts on.
	target func(proto.Message) target
}

func envOf(name string) target      { return target{env: name} }
func deploymentOf(id string) target { return target{deployment: id} }

var global = func(proto.Message) target { return target{global: true} }

// byID is the target of every request that names a deployment by id.
func byID(m proto.Message) target {
	return deploymentOf(m.(interface{ GetId() string }).GetId())
}

const (
	admin = "/cutover.v1.AdminService/"
	agent = "/cutover.v1.AgentService/"
)

// rules lists every method the controller serves, with the action the
// policy checks. A method missing here is refused (guard_test checks that
// every method of both services is listed).
var rules = map[string]rule{
	admin + "CreateEnvironment": {action: auth.Administer, mutating: true, target: func(m proto.Message) target {
		return envOf(m.(*cutoverv1.CreateEnvironmentRequest).GetEnvironment().GetName())
	}},
	admin + "UpdateEnvironment": {action: auth.Administer, mutating: true, target: func(m proto.Message) target {
		return envOf(m.(*cutoverv1.UpdateEnvironmentRequest).GetEnvironment().GetName())
	}},
	admin + "GetEnvironment": {action: auth.Read, target: func(m proto.Message) target {
		return envOf(m.(*cutoverv1.GetEnvironmentRequest).GetName())
	}},
	admin + "ListEnvironments":    {action: auth.Read, target: global},
	admin + "RegisterApplication": {action: auth.Administer, mutating: true, target: global},
	admin + "GetApplication":      {action: auth.Read, target: global},
	admin + "ListApplications":    {action: auth.Read, target: global},
	admin + "CreateDeployment": {action: auth.Deploy, mutating: true, target: func(m proto.Message) target {
		return envOf(m.(*cutoverv1.CreateDeploymentRequest).GetEnvironment())
	}},
	admin + "PrepareDeployment":       {action: auth.Deploy, mutating: true, target: byID},
	admin + "ContinueDeployment":      {action: auth.Deploy, mutating: true, target: byID},
	admin + "StartDeployment":         {action: auth.Deploy, mutating: true, target: byID},
	admin + "AbortDeployment":         {action: auth.Deploy, mutating: true, target: byID},
	admin + "ExtendDeployment":        {action: auth.Deploy, mutating: true, target: byID},
	admin + "CancelScheduledContinue": {action: auth.Deploy, mutating: true, target: byID},
	admin + "RollbackDeployment":      {action: auth.Deploy, mutating: true, target: byID},
	admin + "ApproveDeployment":       {action: auth.Approve, mutating: true, target: byID},
	admin + "GetDeployment":           {action: auth.Read, target: byID},
	admin + "GetDeploymentPlan":       {action: auth.Read, target: byID},
	admin + "GetDeploymentPackage":    {action: auth.Read, target: byID},
	admin + "WatchDeployment":         {action: auth.Read, target: byID},
	admin + "ListDeployments": {action: auth.Read, target: func(m proto.Message) target {
		return envOf(m.(*cutoverv1.ListDeploymentsRequest).GetEnvironment())
	}},
	admin + "ListAgents": {action: auth.Read, target: func(m proto.Message) target {
		return envOf(m.(*cutoverv1.ListAgentsRequest).GetEnvironment())
	}},
	admin + "ReconcileEnvironment": {action: auth.Deploy, mutating: true, target: func(m proto.Message) target {
		return envOf(m.(*cutoverv1.ReconcileEnvironmentRequest).GetEnvironment())
	}},
	admin + "StopApplication": {action: auth.Deploy, mutating: true, target: func(m proto.Message) target {
		return envOf(m.(*cutoverv1.StopApplicationRequest).GetEnvironment())
	}},
	admin + "ListAuditEvents": {action: auth.Read, target: func(m proto.Message) target {
		r := m.(*cutoverv1.ListAuditEventsRequest)
		if r.GetEnvironment() == "" && r.GetDeployment() != "" {
			return deploymentOf(r.GetDeployment())
		}
		return envOf(r.GetEnvironment())
	}},
	admin + "CreateToken": {action: auth.Administer, mutating: true, target: global},
	admin + "ListTokens":  {action: auth.Administer, target: global},
	admin + "RevokeToken": {action: auth.Administer, mutating: true, target: global},
	admin + "CreateJoinToken": {action: auth.Administer, mutating: true, target: func(m proto.Message) target {
		return envOf(m.(*cutoverv1.CreateJoinTokenRequest).GetEnvironment())
	}},
	admin + "RevokeAgent": {action: auth.Administer, mutating: true, target: func(m proto.Message) target {
		return envOf(m.(*cutoverv1.RevokeAgentRequest).GetEnvironment())
	}},
	admin + "RemoveAgent": {action: auth.Administer, mutating: true, target: func(m proto.Message) target {
		return envOf(m.(*cutoverv1.RemoveAgentRequest).GetEnvironment())
	}},

	agent + "Connect":          {action: auth.Session},
	agent + "GetManifest":      {action: auth.Session},
	agent + "FetchChunks":      {action: auth.Session, peer: auth.Mirror},
	agent + "RenewCertificate": {action: auth.Session, mutating: true},
	agent + "Enroll":           {open: true, mutating: true},
}
