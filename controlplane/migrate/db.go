package migrate

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/cutover-dev/cutover/pkg/errkind"
)

// The drivers DB.Driver accepts.
const (
	// DriverSQLite is SQLite through modernc.org/sqlite (pure Go); the DSN
	// is a file path or a "file:" URI.
	DriverSQLite = "sqlite"
	// DriverPostgres is PostgreSQL through pgx; the DSN is a URL
	// (postgres://…) or libpq key=value pairs.
	DriverPostgres = "postgres"
)

// DB says how to reach an environment's database. Its String and LogValue
// methods redact the DSN's password, so a DB may be printed and logged.
type DB struct {
	// Driver is DriverSQLite or DriverPostgres.
	Driver string `json:"driver"`
	// DSN is the connection string; it may hold a password.
	DSN string `json:"dsn"`
	// StatementTimeout bounds each statement; 0 leaves the server's
	// default (PostgreSQL) or no limit (SQLite).
	StatementTimeout time.Duration `json:"statement_timeout,omitempty"`
	// LockTimeout bounds waits on locks held by others; 0 leaves the
	// server's default (PostgreSQL) or 10s (SQLite's busy timeout).
	LockTimeout time.Duration `json:"lock_timeout,omitempty"`
	// Epoch is the epoch of the leader that runs the migrations (several
	// controllers on one etcd); a database on which a higher epoch ran
	// refuses it (fence.go). 0: not fenced.
	Epoch uint64 `json:"-"`
}

// Validate fails with errkind.InvalidArgument for an unknown driver, an
// empty or malformed DSN, an in-memory SQLite database (each connection
// would see its own) or a negative timeout.
func (d DB) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("database: "+format+": %w", append(a, errkind.InvalidArgument)...)
	}
	if strings.TrimSpace(d.DSN) == "" {
		return bad("the dsn is empty")
	}
	if d.StatementTimeout < 0 || d.LockTimeout < 0 {
		return bad("statement_timeout and lock_timeout must not be negative")
	}
	switch d.Driver {
	case DriverSQLite:
		path, q, err := sqliteParts(d.DSN)
		if err != nil {
			return bad("sqlite dsn %q: %v", RedactDSN(d.DSN), err)
		}
		if path == "" || path == ":memory:" || q.Get("mode") == "memory" {
			return bad("sqlite dsn %q: an in-memory database cannot be migrated (each connection has its own); give a file path", RedactDSN(d.DSN))
		}
	case DriverPostgres:
		if _, err := pgx.ParseConfig(d.DSN); err != nil {
			return bad("postgres dsn %q cannot be parsed (%s)", RedactDSN(d.DSN), redactIn(err.Error(), d.DSN))
		}
	default:
		return bad("unknown driver %q; want %q or %q", d.Driver, DriverSQLite, DriverPostgres)
	}
	return nil
}

// String returns the driver and the redacted DSN.
func (d DB) String() string { return d.Driver + ":" + RedactDSN(d.DSN) }

// LogValue logs the driver and the redacted DSN.
func (d DB) LogValue() slog.Value {
	return slog.GroupValue(slog.String("driver", d.Driver), slog.String("dsn", RedactDSN(d.DSN)))
}

const redacted = "xxxxx"

var (
	kvPasswordRE    = regexp.MustCompile(`(^|\s)(password\s*=\s*)('(?:[^'\\]|\\.|'')*'?\S*|\S*)`)
	queryPasswordRE = regexp.MustCompile(`([?&]password=)[^&#]*`)
)

// RedactDSN returns dsn with any password replaced by "xxxxx": the password
// of a URL's user info (postgres://user:secret@host/db), a "password" URL
// query parameter, and a libpq key=value "password" (quoted or not).
// Everything else is kept as written.
func RedactDSN(dsn string) string {
	out := dsn
	if i := strings.Index(out, "://"); i >= 0 {
		authStart := i + 3
		authEnd := len(out)
		if j := strings.IndexAny(out[authStart:], "/?#"); j >= 0 {
			authEnd = authStart + j
		}
		auth := out[authStart:authEnd]
		if at := strings.LastIndex(auth, "@"); at >= 0 {
			if colon := strings.Index(auth[:at], ":"); colon >= 0 {
				out = out[:authStart+colon+1] + redacted + out[authStart+at:]
			}
		}
	}
	out = queryPasswordRE.ReplaceAllString(out, "${1}"+redacted)
	if !strings.Contains(dsn, "://") {
		out = kvPasswordRE.ReplaceAllString(out, "${1}${2}"+redacted)
	}
	return out
}

// redactIn replaces dsn, and the password it holds, inside msg. The user
// and database names stay readable even when the password is one of them
// (or part of one): only the occurrences of the password outside those
// names are hidden.
func redactIn(msg, dsn string) string {
	msg = strings.ReplaceAll(msg, dsn, RedactDSN(dsn))
	pw, names := dsnSecrets(dsn)
	if pw == "" {
		return msg
	}
	// Mark the bytes of msg that belong to a user or database name.
	keep := make([]bool, len(msg))
	for _, n := range names {
		if n == "" {
			continue
		}
		for i := 0; ; {
			k := strings.Index(msg[i:], n)
			if k < 0 {
				break
			}
			for j := i + k; j < i+k+len(n); j++ {
				keep[j] = true
			}
			i += k + len(n)
		}
	}
	var b strings.Builder
	for i := 0; i < len(msg); {
		if strings.HasPrefix(msg[i:], pw) && !slices.Contains(keep[i:i+len(pw)], true) {
			b.WriteString(redacted)
			i += len(pw)
			continue
		}
		b.WriteByte(msg[i])
		i++
	}
	return b.String()
}

// dsnSecrets returns the password a postgres DSN holds ("" when none, or
// when shorter than 3 bytes), and its user and database names.
func dsnSecrets(dsn string) (string, []string) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil || len(cfg.Password) < 3 {
		return "", nil
	}
	return cfg.Password, []string{cfg.User, cfg.Database}
}

// sqliteParts splits a SQLite DSN into its file path and URI parameters.
func sqliteParts(dsn string) (string, url.Values, error) {
	if !strings.HasPrefix(dsn, "file:") {
		return dsn, url.Values{}, nil
	}
	rest := strings.TrimPrefix(dsn, "file:")
	rest, _, _ = strings.Cut(rest, "#")
	p, rawQuery, _ := strings.Cut(rest, "?")
	if strings.HasPrefix(p, "//") { // file://host/path: keep /path
		p = p[2:]
		if k := strings.Index(p, "/"); k >= 0 {
			p = p[k:]
		}
	}
	path, err := url.PathUnescape(p)
	if err != nil {
		return "", nil, err
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return "", nil, err
	}
	return path, q, nil
}

var sqlitePathEscaper = strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23")

// sqliteReadOnlyDSN returns a URI that opens the database read-only, and the
// file's path.
func sqliteReadOnlyDSN(dsn string) (uri, path string, err error) {
	path, q, err := sqliteParts(dsn)
	if err != nil {
		return "", "", err
	}
	q.Set("mode", "ro")
	return "file:" + sqlitePathEscaper.Replace(path) + "?" + q.Encode(), path, nil
}

// open returns a pool for d and one connection from it; the caller closes
// both (connection first).
func open(ctx context.Context, d DB, dsn string) (*sql.DB, *sql.Conn, error) {
	var pool *sql.DB
	switch d.Driver {
	case DriverPostgres:
		cfg, err := pgx.ParseConfig(dsn)
		if err != nil {
			return nil, nil, fmt.Errorf("database %s: %s: %w", d, redactIn(err.Error(), dsn), errkind.InvalidArgument)
		}
		pool = stdlib.OpenDB(*cfg)
	default:
		var err error
		pool, err = sql.Open("sqlite", dsn)
		if err != nil {
			return nil, nil, fmt.Errorf("database %s: %s: %w", d, redactIn(err.Error(), dsn), errkind.InvalidArgument)
		}
	}
	conn, err := pool.Conn(ctx)
	if err == nil {
		err = conn.PingContext(ctx)
		if err != nil {
			_ = conn.Close()
		}
	}
	if err != nil {
		_ = pool.Close()
		kind := errkind.Unavailable
		if errors.Is(err, context.DeadlineExceeded) {
			kind = errkind.DeadlineExceeded
		}
		return nil, nil, fmt.Errorf("cannot connect to the database %s: %s; nothing was changed: %w", d, redactIn(err.Error(), dsn), kind)
	}
	return pool, conn, nil
}

// sqliteExists reports whether the SQLite database file exists.
func sqliteExists(path string) (bool, error) {
	_, err := os.Stat(path)
	if err == nil {
		return true, nil
	}
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	return false, fmt.Errorf("sqlite database %q: %v: %w", path, err, errkind.Unavailable)
}
