// Package audit keeps the controller's audit log: one entry per action
// (who, with which roles, what, on which environment and deployment, the
// result), appended to a hash chain in the controller's store (bucket
// audit/, see pkg/auditlog for the chain). The path that decides on a
// request appends its entry before it answers; Append returns only once
// the entry is committed to disk, and a caller that cannot append must not
// carry out or acknowledge the action.
//
// Summaries and reasons never hold secrets: Append passes them through
// Redact. They are cut at maxText bytes, so that a request or an error
// that echoes a large input cannot make an entry, and so every list of
// entries, too large to serve.
package audit

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/pkg/auditlog"
)

// Config holds what the log needs.
type Config struct {
	Store model.Store
	Clock func() time.Time
	Log   *slog.Logger
}

// Log is the controller's audit log.
type Log struct {
	store model.Store
	clock func() time.Time
	log   *slog.Logger
}

// New returns the audit log kept in cfg.Store.
func New(cfg Config) *Log {
	l := &Log{store: cfg.Store, clock: cfg.Clock, log: cfg.Log}
	if l.clock == nil {
		l.clock = time.Now
	}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	return l
}

// Append adds e at the end of the log and returns it as stored: numbered
// (Seq), timed (Time, from the clock), redacted (Summary, Reason), chained
// (PrevHash) and hashed (Hash); the Seq, Time, PrevHash and Hash that e
// carries are ignored. Strings that are not valid UTF-8 are stored with
// U+FFFD in place of the bad bytes. It returns once the entry is
// committed to disk. It writes the entry even when ctx is done: the action
// it records may have happened. Its errors are the store's.
func (l *Log) Append(ctx context.Context, e auditlog.Entry) (auditlog.Entry, error) {
	err := l.store.Update(func(tx model.Tx) error {
		var err error
		e, err = l.AppendTx(tx, e)
		return err
	})
	if err != nil {
		l.log.ErrorContext(ctx, "audit entry not written", "method", e.Method, "subject", e.Subject, "error", err)
		return auditlog.Entry{}, fmt.Errorf("write audit entry for %s by %q (the action must not proceed): %w", e.Method, e.Subject, err)
	}
	return e, nil
}

// AppendTx appends e in tx, the transaction of the change it records, so
// that the change and its entry commit together or not at all (what the
// controller does by itself: controlplane/deployment).
func (l *Log) AppendTx(tx model.Tx, e auditlog.Entry) (auditlog.Entry, error) {
	e.Subject = valid(e.Subject)
	e.Roles = append([]string(nil), e.Roles...)
	for i, r := range e.Roles {
		e.Roles[i] = valid(r)
	}
	e.Method, e.Environment, e.Deployment = valid(e.Method), valid(e.Environment), valid(e.Deployment)
	e.Summary, e.Reason = text(e.Summary), text(e.Reason)
	e.Code = valid(e.Code)
	last, err := tx.LastAudit()
	if err != nil {
		return e, err
	}
	e.Seq, e.PrevHash = 1, ""
	if last != nil {
		e.Seq, e.PrevHash = last.Seq+1, last.Hash
	}
	// The clock is read inside the transaction, so that times follow
	// the order of the entries (as far as the clock does).
	e.Time = l.clock()
	e.Hash = e.ComputeHash()
	return e, tx.AppendAudit(toRecord(e))
}

// valid returns s with every invalid UTF-8 sequence replaced by U+FFFD: the
// API and the store carry only valid UTF-8, and the hash must be of what
// they carry.
func valid(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }

// maxText bounds an entry's Summary and Reason, in bytes.
const maxText = 1024

// text returns a summary or a reason as it is stored: valid UTF-8,
// redacted, cut at maxText bytes. Only its first 4*maxText bytes are
// read, so that a huge input costs little; a secret there is redacted
// before the cut (a password that the cut would split is hidden whole).
func text(s string) string {
	if len(s) > 4*maxText {
		s = s[:4*maxText]
	}
	return clip(Redact(valid(s)))
}

// clip returns s cut to at most maxText bytes, at the start of a
// character, with "…" after a cut.
func clip(s string) string {
	if len(s) <= maxText {
		return s
	}
	cut := maxText
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// Filter selects entries; every field is optional (zero: no condition).
type Filter struct {
	Environment, Deployment, Subject string
	// Start keeps entries at or after it; End keeps entries before it.
	Start, End time.Time
}

func (f Filter) match(e auditlog.Entry) bool {
	return (f.Environment == "" || e.Environment == f.Environment) &&
		(f.Deployment == "" || e.Deployment == f.Deployment) &&
		(f.Subject == "" || e.Subject == f.Subject) &&
		(f.Start.IsZero() || !e.Time.Before(f.Start)) &&
		(f.End.IsZero() || e.Time.Before(f.End))
}

// List returns the entries that f selects, oldest first. Its errors are the
// store's (DataLoss for a record that cannot be decoded).
func (l *Log) List(ctx context.Context, f Filter) ([]auditlog.Entry, error) {
	var out []auditlog.Entry
	err := l.store.View(func(tx model.Tx) error {
		return tx.AuditRecords(func(r *model.AuditRecord) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			if e := fromRecord(r); f.match(e) {
				out = append(out, e)
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read the audit log: %w", err)
	}
	return out, nil
}

// Verify checks the whole chain as stored; nil if it is intact, else an
// error wrapping the *auditlog.BrokenError that names the first entry that
// does not match (kind DataLoss).
func (l *Log) Verify(ctx context.Context) error {
	es, err := l.List(ctx, Filter{})
	if err != nil {
		return err
	}
	if err := auditlog.Verify(es); err != nil {
		return fmt.Errorf("audit log broken at %w; entries from there on cannot be trusted", err)
	}
	return nil
}

func toRecord(e auditlog.Entry) *model.AuditRecord {
	return &model.AuditRecord{
		Seq: e.Seq, Time: e.Time, Subject: e.Subject, Roles: e.Roles, Method: e.Method,
		Environment: e.Environment, Deployment: e.Deployment, Summary: e.Summary,
		Code: e.Code, Reason: e.Reason, PrevHash: e.PrevHash, Hash: e.Hash,
	}
}

func fromRecord(r *model.AuditRecord) auditlog.Entry {
	return auditlog.Entry{
		Seq: r.Seq, Time: r.Time, Subject: r.Subject, Roles: r.Roles, Method: r.Method,
		Environment: r.Environment, Deployment: r.Deployment, Summary: r.Summary,
		Code: r.Code, Reason: r.Reason, PrevHash: r.PrevHash, Hash: r.Hash,
	}
}
