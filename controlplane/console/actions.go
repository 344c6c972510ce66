package console

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cutover-dev/cutover/controlplane/auth"
	"github.com/cutover-dev/cutover/controlplane/deployment"
	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/pkg/errkind"
)

// --- login ---

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request, _ *request) error {
	c.render(w, nil, http.StatusOK, "login", map[string]any{"Next": localPath(r.URL.Query().Get("next"))})
	return nil
}

// localPath returns p if it is a path on this site, else "/": a login
// never sends the browser elsewhere.
func localPath(p string) string {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") {
		return "/"
	}
	if u, err := url.Parse(p); err != nil || u.Host != "" || u.Scheme != "" {
		return "/"
	}
	return p
}

// login checks an operator token and opens a session. Every attempt is
// audited; the token itself never is.
func (c *Console) login(w http.ResponseWriter, r *http.Request, _ *request) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	token := strings.TrimSpace(r.PostFormValue("token"))
	next := localPath(r.PostFormValue("next"))
	addr := clientAddr(r)
	if blocked, wait := c.logins.blocked(addr); blocked {
		secs := int(wait.Seconds()) + 1
		c.record(r, "Login", auth.Subject{Name: "anonymous"}, target{}, errTooManyLogins)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		c.render(w, nil, http.StatusTooManyRequests, "login", map[string]any{"Next": next,
			"Error": fmt.Sprintf("Too many failed logins from your address (%d in %s). Try again in %d seconds.", loginFailures, loginWindow, secs)})
		return nil
	}
	s, err := c.auth.Authenticate(token)
	if err != nil {
		c.logins.failed(addr)
		c.record(r, "Login", auth.Subject{Name: "anonymous"}, target{}, err)
		c.render(w, nil, http.StatusUnauthorized, "login", map[string]any{"Next": next,
			"Error": "That token is not valid (unknown, wrong, revoked or expired). Ask an admin for one: cutoverctl token create."})
		return nil
	}
	// The console is for those who may read it (the Home route's check),
	// never for an agent.
	if err := auth.Allowed(s, auth.Read, auth.Target{Global: true}); err != nil {
		c.logins.failed(addr)
		c.record(r, "Login", s, target{}, err)
		c.render(w, nil, http.StatusForbidden, "login", map[string]any{"Next": next, "Error": "Only operator tokens open the console."})
		return nil
	}
	if err := c.record(r, "Login", s, target{env: s.Environment}, nil); err != nil {
		return fmt.Errorf("the login could not be recorded in the audit log: %w", errkind.Unavailable)
	}
	se := c.sessions.open(token, s)
	http.SetCookie(w, se.cookie(c.clock()))
	http.Redirect(w, r, next, http.StatusSeeOther)
	return nil
}

// logout ends the session.
func (c *Console) logout(r *http.Request, rq *request) (string, error) {
	c.sessions.end(rq.session.id)
	return "/login", nil
}

// --- deployments ---

func depPath(id string) string { return "/deployments/" + url.PathEscape(id) }

// create plans a deployment of one application.
func (c *Console) create(r *http.Request, rq *request) (string, error) {
	env := strings.TrimSpace(r.PostFormValue("environment"))
	app := strings.TrimSpace(r.PostFormValue("application"))
	if env == "" || app == "" {
		return "", fmt.Errorf("choose an environment and an application; nothing was created: %w", errkind.InvalidArgument)
	}
	d, err := c.deps.Create(r.Context(), rq.subject.Name, env,
		[]deployment.AppVersion{{Name: app, VersionLabel: strings.TrimSpace(r.PostFormValue("version"))}})
	if err != nil {
		return "", err
	}
	rq.target.deployment = d.ID
	return depPath(d.ID), nil
}

func (c *Console) prepare(r *http.Request, rq *request) (string, error) {
	_, err := c.deps.Prepare(r.Context(), rq.subject.Name, rq.target.deployment)
	return depPath(rq.target.deployment), err
}

func (c *Console) start(r *http.Request, rq *request) (string, error) {
	_, err := c.deps.Start(r.Context(), rq.subject.Name, rq.target.deployment, deployment.ContinueOptions{})
	return depPath(rq.target.deployment), err
}

// continue_ starts stage 2, or with the form's at_window schedules it
// at the next window opening, or with force (and its required reason)
// starts it outside the windows: the choices of ContinueDeployment.
func (c *Console) continue_(r *http.Request, rq *request) (string, error) {
	_, err := c.deps.Continue(r.Context(), rq.subject.Name, rq.target.deployment, continueOptions(r))
	return depPath(rq.target.deployment), err
}

// continueOptions reads the choices of a continue form, as
// adminapi.continueOptions reads them from a request: force with
// force_reason (the form's reason), or at_window.
func continueOptions(r *http.Request) deployment.ContinueOptions {
	o := deployment.ContinueOptions{Force: checked(r, "force"), AtWindow: checked(r, "at_window")}
	if o.Force {
		o.ForceReason = strings.TrimSpace(r.PostFormValue("reason"))
	}
	return o
}

// checked says whether a form's checkbox or hidden flag name is set.
func checked(r *http.Request, name string) bool {
	switch r.PostFormValue(name) {
	case "on", "true", "1":
		return true
	}
	return false
}

func (c *Console) cancelSchedule(r *http.Request, rq *request) (string, error) {
	_, err := c.deps.CancelSchedule(r.Context(), rq.subject.Name, rq.target.deployment)
	return depPath(rq.target.deployment), err
}

// extend moves a PREPARED deployment's expiry later by the form's by (a
// Go duration: 24h, 90m).
func (c *Console) extend(r *http.Request, rq *request) (string, error) {
	by, err := time.ParseDuration(strings.TrimSpace(r.PostFormValue("by")))
	if err != nil {
		return depPath(rq.target.deployment), fmt.Errorf("extend by %q: give a duration such as 24h; nothing was changed: %w", r.PostFormValue("by"), errkind.InvalidArgument)
	}
	_, err = c.deps.Extend(r.Context(), rq.subject.Name, rq.target.deployment, by)
	return depPath(rq.target.deployment), err
}

// rollback rolls a DEPLOYED deployment back, with the form's choices of
// RollbackDeployment: with_database also runs the down migrations, and
// force (with --with-database and the reason) leaves the irreversible ones
// applied. The domain refuses what the API refuses, and says why.
func (c *Console) rollback(r *http.Request, rq *request) (string, error) {
	_, err := c.deps.Rollback(r.Context(), rq.subject.Name, rq.target.deployment, deployment.RollbackOptions{
		Reason:       strings.TrimSpace(r.PostFormValue("reason")),
		WithDatabase: checked(r, "with_database"),
		Force:        checked(r, "force"),
	})
	return depPath(rq.target.deployment), err
}

// --- environments ---

// setTwoStage turns an environment's two stages on or off (LifeTime's
// "Execute deployments in two stages"): the form's two_stage checkbox,
// absent when unticked.
func (c *Console) setTwoStage(r *http.Request, rq *request) (string, error) {
	on := checked(r, "two_stage")
	r.PostForm.Set("two_stage", strconv.FormatBool(on)) // the audit summary says false too, not nothing
	_, err := c.cat.UpdateEnvironment(r.Context(), model.Environment{Name: rq.target.env, TwoStage: on}, []string{"two_stage"})
	return "/environments#env-" + url.PathEscape(rq.target.env), err
}

func (c *Console) abort(r *http.Request, rq *request) (string, error) {
	_, err := c.deps.Abort(r.Context(), rq.subject.Name, rq.target.deployment, strings.TrimSpace(r.PostFormValue("reason")))
	return depPath(rq.target.deployment), err
}

func (c *Console) approve(r *http.Request, rq *request) (string, error) {
	_, err := c.deps.Approve(r.Context(), rq.subject.Name, rq.target.deployment, strings.TrimSpace(r.PostFormValue("comment")))
	return depPath(rq.target.deployment), err
}
