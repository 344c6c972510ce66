package console

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"sync"
	"time"

	"github.com/cutover-dev/cutover/controlplane/auth"
)

// cookieName is the session cookie. "__Host-" makes browsers refuse it
// unless it is Secure, host-only and for path /.
const cookieName = "__Host-cutover-session"

// csrfField is the form field that carries the session's CSRF token.
const csrfField = "csrf"

// session is one login. token is the operator token it was opened with,
// kept here only (never in a cookie or a page) so that every request
// re-authenticates it: revoking the token ends the session.
type session struct {
	id      string
	token   string
	csrf    string
	subject auth.Subject
	expires time.Time
}

// sessions holds the open sessions in memory: a controller restart logs
// everyone out.
type sessions struct {
	ttl   time.Duration
	clock func() time.Time

	mu sync.Mutex
	m  map[string]*session
}

func newSessions(ttl time.Duration, clock func() time.Time) *sessions {
	return &sessions{ttl: ttl, clock: clock, m: map[string]*session{}}
}

// randomID returns 32 random bytes, URL-safe base64.
func randomID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

// open starts a session for subject s, who logged in with token.
func (ss *sessions) open(token string, s auth.Subject) *session {
	now := ss.clock()
	se := &session{id: randomID(), token: token, csrf: randomID(), subject: s, expires: now.Add(ss.ttl)}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for id, o := range ss.m { // forget the expired ones
		if !now.Before(o.expires) {
			delete(ss.m, id)
		}
	}
	ss.m[se.id] = se
	return se
}

// get returns the unexpired session id names, or nil.
func (ss *sessions) get(id string) *session {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	se := ss.m[id]
	if se == nil {
		return nil
	}
	if !ss.clock().Before(se.expires) {
		delete(ss.m, id)
		return nil
	}
	return se
}

// end forgets a session.
func (ss *sessions) end(id string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.m, id)
}

// fromRequest returns the session the request's cookie names, or nil.
func (ss *sessions) fromRequest(r *http.Request) *session {
	ck, err := r.Cookie(cookieName)
	if err != nil || ck.Value == "" {
		return nil
	}
	return ss.get(ck.Value)
}

// cookie is the session cookie of se at now: HttpOnly, Secure,
// SameSite=Strict, expiring with the session.
func (se *session) cookie(now time.Time) *http.Cookie {
	return &http.Cookie{Name: cookieName, Value: se.id, Path: "/", Expires: se.expires,
		MaxAge: int(se.expires.Sub(now).Seconds()), HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode}
}

// clearCookie removes the session cookie from the browser.
func clearCookie() *http.Cookie {
	return &http.Cookie{Name: cookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode}
}

// checkCSRF says whether the form's CSRF token is the session's, in
// constant time.
func (se *session) checkCSRF(r *http.Request) bool {
	got := r.PostFormValue(csrfField)
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(se.csrf)) == 1
}
