package console

import (
	"bytes"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/cutover-dev/cutover/controlplane/auth"
)

// pageNames are the templates under templates/, each rendered inside
// layout.html.
var pageNames = []string{"login", "error", "environments", "deployments", "deployment", "frontends", "audit"}

// funcs are the templates' helpers.
var funcs = template.FuncMap{
	"bytes":    formatBytes,
	"short":    shortID,
	"utc":      func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
	"iso":      func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"nonzero":  func(t time.Time) bool { return !t.IsZero() },
	"join":     strings.Join,
	"stateCSS": func(s any) string { return "state-" + strings.ToLower(strings.ReplaceAll(fmt.Sprint(s), "_", "-")) },
}

func mustParsePages() map[string]*template.Template {
	out := map[string]*template.Template{}
	for _, name := range pageNames {
		out[name] = template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html"))
	}
	return out
}

// page is what layout.html gets.
type page struct {
	Title string
	// Nav names the active menu entry.
	Nav string
	// Subject is who is logged in; nil on the login page.
	Subject *auth.Subject
	// CSRF is the session's CSRF token, for the forms.
	CSRF string
	Data any
}

// render writes page name with data, rendered into a buffer first so that
// a template error does not leave half a page.
func (c *Console) render(w http.ResponseWriter, rq *request, status int, name string, data any) {
	p := page{Nav: name, Data: data}
	if rq != nil && rq.session != nil {
		s := rq.subject
		p.Subject, p.CSRF = &s, rq.session.csrf
	}
	var buf bytes.Buffer
	if err := c.pages[name].Execute(&buf, p); err != nil {
		c.log.Error("console: render", "page", name, "err", err)
		http.Error(w, "internal error; the controller's log has the details", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// formatBytes renders a size in binary units: 512 B, 1.5 KiB, 20.0 MiB.
func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// formatDuration renders a duration for people: 850ms, 12.3s, 4m10s,
// 95h59m, 3d 4h.
func formatDuration(d time.Duration) string {
	switch {
	case d < 0:
		return "-" + formatDuration(-d)
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	case d < time.Hour:
		return d.Round(time.Second).String()
	case d < 96*time.Hour:
		return strings.TrimSuffix(d.Round(time.Minute).String(), "0s")
	default:
		d = d.Round(time.Hour)
		return fmt.Sprintf("%dd %dh", d/(24*time.Hour), (d%(24*time.Hour))/time.Hour)
	}
}

// shortID shortens a release id for display (the full id is in the title).
func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
