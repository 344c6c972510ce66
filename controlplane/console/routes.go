package console

import (
	"net/http"

	"github.com/cutover-dev/cutover/controlplane/auth"
)

// route is how the console treats one request pattern.
type route struct {
	// pattern is the http.ServeMux pattern, method included.
	pattern string
	// name is what the audit log records as the method ("console/" +
	// name) and what a page asks about before it shows a button (may).
	name string
	// action is what auth.Allowed checks; 0 for the open routes (login).
	action auth.Action
	// mutating requests change state: they need the session's CSRF token
	// and are audited whether or not they were allowed; reads are audited
	// only when refused.
	mutating bool
	// csrf alone: the request needs the CSRF token but changes no
	// deployment (logout).
	csrf bool
	// target says what the request acts on.
	target func(c *Console, r *http.Request, s auth.Subject) (target, error)
	// page writes a read's answer; act does a change and returns where
	// the browser goes next (303). One of them is set.
	page func(c *Console, w http.ResponseWriter, r *http.Request, rq *request) error
	act  func(c *Console, r *http.Request, rq *request) (string, error)
}

// target is what a request acts on: an environment (empty: all that the
// subject may read), or nothing in particular (global), and the
// deployment it names, if any.
type target struct {
	env, deployment string
	global          bool
}

// routes is the console's one table: every route, with the action the
// policy checks. The actions are those controlplane/guard checks for the
// AdminService methods that do the same thing (rules.go there).
var routes = []route{
	{pattern: "GET /login", name: "LoginPage", page: (*Console).loginPage},
	{pattern: "POST /login", name: "Login", page: (*Console).login},
	{pattern: "POST /logout", name: "Logout", action: auth.Read, csrf: true, target: global, act: (*Console).logout},

	{pattern: "GET /{$}", name: "Home", action: auth.Read, target: global, page: (*Console).home},
	{pattern: "GET /environments", name: "ListEnvironments", action: auth.Read, target: global, page: (*Console).environmentsPage},
	{pattern: "GET /deployments", name: "ListDeployments", action: auth.Read, target: envFromQuery, page: (*Console).deploymentsPage},
	{pattern: "POST /deployments", name: "CreateDeployment", action: auth.Deploy, mutating: true, target: envFromForm, act: (*Console).create},
	{pattern: "GET /deployments/{id}", name: "GetDeployment", action: auth.Read, target: byID, page: (*Console).deploymentPage},
	{pattern: "GET /deployments/{id}/events", name: "WatchDeployment", action: auth.Read, target: byID, page: (*Console).events},
	{pattern: "POST /deployments/{id}/prepare", name: "PrepareDeployment", action: auth.Deploy, mutating: true, target: byID, act: (*Console).prepare},
	{pattern: "POST /deployments/{id}/start", name: "StartDeployment", action: auth.Deploy, mutating: true, target: byID, act: (*Console).start},
	{pattern: "POST /deployments/{id}/continue", name: "ContinueDeployment", action: auth.Deploy, mutating: true, target: byID, act: (*Console).continue_},
	{pattern: "POST /deployments/{id}/abort", name: "AbortDeployment", action: auth.Deploy, mutating: true, target: byID, act: (*Console).abort},
	{pattern: "POST /deployments/{id}/approve", name: "ApproveDeployment", action: auth.Approve, mutating: true, target: byID, act: (*Console).approve},
	{pattern: "POST /deployments/{id}/cancel-schedule", name: "CancelScheduledContinue", action: auth.Deploy, mutating: true, target: byID, act: (*Console).cancelSchedule},
	{pattern: "POST /deployments/{id}/extend", name: "ExtendDeployment", action: auth.Deploy, mutating: true, target: byID, act: (*Console).extend},
	{pattern: "POST /deployments/{id}/rollback", name: "RollbackDeployment", action: auth.Deploy, mutating: true, target: byID, act: (*Console).rollback},
	{pattern: "POST /environments/{name}/two-stage", name: "UpdateEnvironment", action: auth.Administer, mutating: true, target: envFromPath, act: (*Console).setTwoStage},
	{pattern: "GET /frontends", name: "ListAgents", action: auth.Read, target: envFromQuery, page: (*Console).frontendsPage},
	{pattern: "GET /audit", name: "ListAuditEvents", action: auth.Read, target: envFromQuery, page: (*Console).auditPage},
}

// actionsByName returns the action of each route, by the route's name.
func actionsByName() map[string]auth.Action {
	m := map[string]auth.Action{}
	for _, rt := range routes {
		if _, dup := m[rt.name]; dup {
			panic("console: two routes named " + rt.name)
		}
		m[rt.name] = rt.action
	}
	return m
}

// may says whether s may do what the route named name does in env: the
// same check the route makes, asked before a page shows its button.
func (c *Console) may(s auth.Subject, name, env string) bool {
	a, ok := c.actions[name]
	return ok && a != 0 && auth.Allowed(s, a, auth.Target{Environment: env}) == nil
}

func global(*Console, *http.Request, auth.Subject) (target, error) { return target{global: true}, nil }

// byID: the deployment named in the path, in its environment.
func byID(c *Console, r *http.Request, _ auth.Subject) (target, error) {
	id := r.PathValue("id")
	env, err := c.deps.Environment(id)
	return target{env: env, deployment: id}, err
}

// envFromQuery: the environment the page is filtered by; for a subject
// limited to one environment, that one when none is named.
func envFromQuery(_ *Console, r *http.Request, s auth.Subject) (target, error) {
	env := r.URL.Query().Get("environment")
	if env == "" {
		env = s.Environment
	}
	return target{env: env}, nil
}

// envFromPath: the environment named in the path.
func envFromPath(_ *Console, r *http.Request, _ auth.Subject) (target, error) {
	return target{env: r.PathValue("name")}, nil
}

// envFromForm: the environment the form names.
func envFromForm(_ *Console, r *http.Request, _ auth.Subject) (target, error) {
	return target{env: r.PostFormValue("environment")}, nil
}
