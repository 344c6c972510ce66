// Package console serves the controller's web console: server-rendered
// pages (html/template, embedded with the stylesheet and one small script)
// over HTTPS, for people who watch and drive deployments in a browser.
//
// It is a transport like controlplane/adminapi: it calls the same domain
// services (catalog, deployment, fleet, audit, auth) and holds no rules of
// its own. Who may do what is decided by auth.Allowed with the actions of
// routes.go, the one table of the console's routes; every state-changing
// request (and every refusal) is appended to the audit log with its
// subject before the answer goes out, as controlplane/guard does for the
// gRPC API.
//
// Operators log in with their operator token (POST /login, field token);
// an address with 10 failed logins within a minute is refused 429 until
// the oldest is a minute old (loginlimit.go). The token stays on the
// server, in a session held in memory: the browser gets a random session
// id in an HttpOnly, Secure, SameSite=Strict cookie that expires. Each request re-authenticates the session's token, so a
// revoked or expired token ends its sessions at once. Every state-changing
// form carries the session's CSRF token, checked in constant time. Pages
// are served with a Content-Security-Policy that allows no inline script or
// style; live progress comes from server-sent events (events.go) that
// static/console.js applies to the page.
package console

import (
	"context"
	"embed"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/cutover-dev/cutover/controlplane/audit"
	"github.com/cutover-dev/cutover/controlplane/auth"
	"github.com/cutover-dev/cutover/controlplane/catalog"
	"github.com/cutover-dev/cutover/controlplane/deployment"
	"github.com/cutover-dev/cutover/controlplane/fleet"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// DefaultSessionTTL is how long a console session lasts after login.
const DefaultSessionTTL = 8 * time.Hour

// Config holds what the console needs.
type Config struct {
	Catalog     *catalog.Catalog
	Deployments *deployment.Service
	Fleet       *fleet.Fleet
	Auth        *auth.Service
	Audit       *audit.Log
	Log         *slog.Logger
	Clock       func() time.Time
	// SessionTTL is how long a session lasts; default DefaultSessionTTL.
	SessionTTL time.Duration
}

// Console is the web console's HTTP handler.
type Console struct {
	cat      *catalog.Catalog
	deps     *deployment.Service
	fleet    *fleet.Fleet
	auth     *auth.Service
	audit    *audit.Log
	log      *slog.Logger
	clock    func() time.Time
	sessions *sessions
	logins   *loginLimiter
	pages    map[string]*template.Template
	mux      *http.ServeMux
	// actions is each route's action by its name (routes.go).
	actions map[string]auth.Action

	stopOnce sync.Once
	stopping chan struct{}
}

// New returns a console. It panics if the embedded templates do not parse
// (a build defect, caught by the package's tests).
func New(cfg Config) *Console {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = DefaultSessionTTL
	}
	c := &Console{cat: cfg.Catalog, deps: cfg.Deployments, fleet: cfg.Fleet, auth: cfg.Auth, audit: cfg.Audit,
		log: cfg.Log, clock: cfg.Clock, sessions: newSessions(cfg.SessionTTL, cfg.Clock), logins: newLoginLimiter(cfg.Clock),
		pages: mustParsePages(), stopping: make(chan struct{}), actions: actionsByName()}
	c.mux = http.NewServeMux()
	static, err := fs.Sub(staticFS, "static")
	if err != nil {
		panic(err)
	}
	c.mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	for _, rt := range routes {
		c.mux.Handle(rt.pattern, c.guarded(rt))
	}
	return c
}

// ServeHTTP serves the console, with its security headers on every answer.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Strict-Transport-Security", "max-age=31536000")
	h.Set("Cache-Control", "no-store")
	c.mux.ServeHTTP(w, r)
}

// ContentSecurityPolicy is sent with every answer: only the console's own
// script and stylesheet run, nothing inline, no frames, no plugins.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// Stop ends the open event streams, so that a graceful stop of the HTTP
// server does not wait for them.
func (c *Console) Stop() {
	c.stopOnce.Do(func() { close(c.stopping) })
}

// withStop returns ctx, also cancelled when the console stops.
func (c *Console) withStop(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-c.stopping:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}
