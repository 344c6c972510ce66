package console

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/grpc/codes"

	"github.com/cutover-dev/cutover/controlplane/auth"
	"github.com/cutover-dev/cutover/pkg/auditlog"
	"github.com/cutover-dev/cutover/pkg/errkind"
	"github.com/cutover-dev/cutover/pkg/rpcerr"
)

// request is what a handler gets once the guard let the request through.
type request struct {
	session *session
	subject auth.Subject
	target  target
}

// maxForm bounds a form's body.
const maxForm = 64 << 10

// errCSRF is the refusal of a state-changing request without the
// session's CSRF token.
var errCSRF = fmt.Errorf("the form's CSRF token is missing or wrong (reload the page and try again); nothing was changed: %w", errkind.PermissionDenied)

// guarded wraps a route: session, re-authentication, CSRF, policy, audit,
// in that order, the way controlplane/guard stands before each gRPC method.
func (c *Console) guarded(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rt.action == 0 { // login
			if err := rt.page(c, w, r, &request{}); err != nil {
				c.fail(w, r, nil, err, 0)
			}
			return
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, maxForm)
			_ = r.ParseForm()
		}
		se := c.sessions.fromRequest(r)
		if se == nil {
			if rt.mutating {
				c.record(r, rt.name, auth.Subject{Name: "anonymous"}, target{}, fmt.Errorf("no session: log in first: %w", errkind.Unauthenticated))
			}
			if r.Method == http.MethodGet && rt.name != "WatchDeployment" {
				http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			c.fail(w, r, nil, errors.New("no session: log in first"), http.StatusUnauthorized)
			return
		}
		s, err := c.auth.Authenticate(se.token)
		if err != nil { // revoked or expired since login
			c.sessions.end(se.id)
			http.SetCookie(w, clearCookie())
			if rt.mutating {
				c.record(r, rt.name, se.subject, target{}, err)
			}
			c.fail(w, r, nil, fmt.Errorf("your session ended: %w", err), http.StatusUnauthorized)
			return
		}
		rq := &request{session: se, subject: s}
		if (rt.mutating || rt.csrf) && !se.checkCSRF(r) {
			if rt.mutating {
				c.record(r, rt.name, s, target{deployment: r.PathValue("id")}, errCSRF)
			}
			c.fail(w, r, rq, errCSRF, 0)
			return
		}
		t, err := rt.target(c, r, s)
		rq.target = t
		if err == nil {
			err = auth.Allowed(s, rt.action, auth.Target{Environment: t.env, Global: t.global})
		}
		if err != nil {
			if rt.mutating || errors.Is(err, errkind.PermissionDenied) {
				c.record(r, rt.name, s, t, err)
			}
			c.fail(w, r, rq, err, 0)
			return
		}
		ctx := auth.WithSubject(r.Context(), s)
		r = r.WithContext(ctx)
		if rt.page != nil {
			if err := rt.page(c, w, r, rq); err != nil {
				c.fail(w, r, rq, err, 0)
			}
			return
		}
		next, err := rt.act(c, r, rq)
		if rt.mutating {
			if aerr := c.record(r, rt.name, s, rq.target, err); aerr != nil && err == nil {
				err = fmt.Errorf("%s was done, but its audit entry could not be written; the controller's log has the details: %w", rt.name, errkind.Unavailable)
			}
		}
		if err != nil {
			c.fail(w, r, rq, err, 0)
			return
		}
		http.Redirect(w, r, next, http.StatusSeeOther)
	})
}

// record appends the audit entry of a request: who, what, on which
// environment and deployment, with which result. It returns the audit
// log's error, if any (logged too).
func (c *Console) record(r *http.Request, name string, s auth.Subject, t target, err error) error {
	e := auditlog.Entry{Subject: s.Name, Roles: s.Roles(), Method: "console/" + name,
		Environment: t.env, Deployment: t.deployment, Summary: summarize(r), Code: codeName(err),
		Reason: r.PostFormValue("reason") + r.PostFormValue("comment")}
	if err != nil && e.Reason == "" {
		e.Reason = err.Error()
	}
	if _, aerr := c.audit.Append(r.Context(), e); aerr != nil {
		c.log.Error("audit entry not written", "method", e.Method, "subject", s.Name, "err", aerr)
		return aerr
	}
	return nil
}

// summarize describes a request for the audit log: its path's id and its
// form fields, without the CSRF token, the login token or reasons (those
// go to Reason).
func summarize(r *http.Request) string {
	m := map[string]string{}
	if id := r.PathValue("id"); id != "" {
		m["id"] = id
	}
	for k, vs := range r.PostForm {
		switch k {
		case csrfField, "token", "reason", "comment":
			continue
		}
		m[k] = strings.Join(vs, ",")
	}
	b, _ := json.Marshal(m) // map keys are sorted by encoding/json
	s := string(b)
	if len(s) > 1024 {
		s = s[:1024] + "…"
	}
	return s
}

// kinds maps error kinds to HTTP statuses.
var kinds = []struct {
	kind   error
	status int
}{
	{errkind.Unauthenticated, http.StatusUnauthorized},
	{errkind.PermissionDenied, http.StatusForbidden},
	{errkind.NotFound, http.StatusNotFound},
	{errkind.InvalidArgument, http.StatusBadRequest},
	{errkind.AlreadyExists, http.StatusConflict},
	{errkind.FailedPrecondition, http.StatusConflict},
	{errkind.Aborted, http.StatusConflict},
	{errkind.Unavailable, http.StatusServiceUnavailable},
	{errkind.DeadlineExceeded, http.StatusGatewayTimeout},
	{errkind.DataLoss, http.StatusInternalServerError},
	{errkind.ResourceExhausted, http.StatusTooManyRequests},
}

// statusOf returns the HTTP status of an error.
func statusOf(err error) int {
	for _, k := range kinds {
		if errors.Is(err, k.kind) {
			return k.status
		}
	}
	return http.StatusInternalServerError
}

// codeName returns the audit code of an error: the name of the gRPC code
// pkg/rpcerr maps its kind to, as the guard records it ("OK" for nil,
// "INTERNAL" for an error of no kind).
func codeName(err error) string {
	if err == nil {
		return "OK"
	}
	c := rpcerr.Code(err)
	if c == codes.Unknown {
		c = codes.Internal
	}
	return code.Code(c).String()
}

// fail answers with the error page. Errors without a kind are logged and
// shown as internal, without their detail.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, rq *request, err error, status int) {
	if status == 0 {
		status = statusOf(err)
	}
	msg := err.Error()
	if status == http.StatusInternalServerError && !errors.Is(err, errkind.DataLoss) {
		c.log.Error("console", "path", r.URL.Path, "err", err)
		msg = "internal error; the controller's log has the details"
	}
	if r.PathValue("id") != "" && strings.HasSuffix(r.URL.Path, "/events") {
		http.Error(w, msg, status)
		return
	}
	back := r.Referer()
	if id := r.PathValue("id"); id != "" {
		back = "/deployments/" + url.PathEscape(id)
	}
	c.render(w, rq, status, "error", map[string]any{"Status": status, "StatusText": http.StatusText(status), "Message": msg, "Back": back})
}
