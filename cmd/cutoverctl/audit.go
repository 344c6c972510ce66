package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cutover-dev/cutover/pkg/auditlog"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// maxAuditResponse bounds the size of a ListAuditEvents answer the client
// accepts (gRPC's default, 4 MiB, is a few thousand entries): the whole
// log comes back in one answer.
const maxAuditResponse = 512 << 20

func newAuditCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Read and verify the controller's audit log",
		Long: `Every action on the controller is recorded in its audit log: who, with
which roles, what, on which environment and deployment, and the result. The
entries form a hash chain (each holds the hash of the one before), so that a
change to any entry shows.

"audit verify" fetches the whole log and checks the chain here, on this
machine, so a controller cannot hide a change to the log it serves. Keep the
last hash it prints: a later run whose entry with the same number has
another hash, or that has fewer entries, means the log was rewritten.`,
		Example: `  cutoverctl audit list --environment production --since 24h
  cutoverctl audit verify`,
	}
	cmd.AddCommand(newAuditListCmd(c), newAuditVerifyCmd(c))
	return cmd
}

func newAuditListCmd(c *cli) *cobra.Command {
	var (
		req          cutoverv1.ListAuditEventsRequest
		since, until string
	)
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List audit entries, oldest first",
		Long: `List audit entries, oldest first. Every filter is optional. --since and
--until take a duration back from now (90m, 24h, 7d) or a time (RFC 3339,
2026-01-02, "2026-01-02 15:04" in local time).`,
		Example: `  cutoverctl audit list --since 24h
  cutoverctl audit list --environment production --subject alice --since 2026-01-02
  cutoverctl audit list --deployment d-12 -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			now := time.Now()
			for _, t := range []struct {
				flag, value string
				to          **timestamppb.Timestamp
			}{{"since", since, &req.StartTime}, {"until", until, &req.EndTime}} {
				if t.value == "" {
					continue
				}
				at, err := parseSince(t.value, now)
				if err != nil {
					return fmt.Errorf("--%s: %w", t.flag, err)
				}
				*t.to = timestamppb.New(at)
			}
			return unary(c, cmd, func(ctx context.Context, api cutoverv1.AdminServiceClient) (*cutoverv1.ListAuditEventsResponse, error) {
				return api.ListAuditEvents(ctx, &req, grpc.MaxCallRecvMsgSize(maxAuditResponse))
			}, formatAuditEvents)
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Environment, "environment", "", "only the entries about this environment")
	f.StringVar(&req.Deployment, "deployment", "", "only the entries about this deployment (d-<n>)")
	f.StringVar(&req.Subject, "subject", "", "only the entries of this subject (a token's subject, agent:<env>/<name>, controller)")
	f.StringVar(&since, "since", "", "only the entries at or after: a duration back from now (24h, 7d) or a time")
	f.StringVar(&until, "until", "", "only the entries before: a duration back from now or a time")
	f.SetNormalizeFunc(envAlias)
	return cmd
}

func newAuditVerifyCmd(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "verify",
		Short: "Fetch the whole audit log and verify its hash chain here",
		Long: `Fetch the whole audit log and verify its hash chain on this machine (with
the same code as the controller, pkg/auditlog): entries numbered from 1
without gaps, each holding the previous entry's hash, each hash matching its
content. Prints "audit log verified: N entries, last hash H" and exits 0, or
names the first entry that does not match and exits 1. The output is that
line whatever -o says.`,
		Example: `  cutoverctl audit verify`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			api, err := c.api()
			if err != nil {
				return err
			}
			ctx, cancel := c.callCtx(cmd.Context())
			defer cancel()
			resp, err := api.ListAuditEvents(ctx, &cutoverv1.ListAuditEventsRequest{}, grpc.MaxCallRecvMsgSize(maxAuditResponse))
			if err != nil {
				return err
			}
			msg, err := verifyEvents(resp.GetEvents())
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(c.stdout, msg)
			return err
		},
	}
}

// verifyEvents verifies the chain of events (the whole log, as served) and
// returns the line to print, or the error naming the first entry that does
// not match.
func verifyEvents(events []*cutoverv1.AuditEvent) (string, error) {
	es := make([]auditlog.Entry, 0, len(events))
	for _, ev := range events {
		es = append(es, entryFromProto(ev))
	}
	if err := auditlog.Verify(es); err != nil {
		var broken *auditlog.BrokenError
		if errors.As(err, &broken) {
			return "", fmt.Errorf("audit log broken at entry %d: %s", broken.Seq, broken.Reason)
		}
		return "", err
	}
	if len(es) == 0 {
		return "audit log verified: 0 entries (the log is empty)", nil
	}
	return fmt.Sprintf("audit log verified: %d entries, last hash %s", len(es), es[len(es)-1].Hash), nil
}

// entryFromProto converts an event as served into the entry it hashes.
func entryFromProto(ev *cutoverv1.AuditEvent) auditlog.Entry {
	var t time.Time
	if ev.GetTime() != nil {
		t = ev.GetTime().AsTime()
	}
	return auditlog.Entry{
		Seq: ev.GetSeq(), Time: t, Subject: ev.GetSubject(), Roles: ev.GetRoles(), Method: ev.GetMethod(),
		Environment: ev.GetEnvironment(), Deployment: ev.GetDeployment(), Summary: ev.GetSummary(),
		Code: ev.GetCode(), Reason: ev.GetReason(), PrevHash: ev.GetPrevHash(), Hash: ev.GetHash(),
	}
}

// parseSince turns --since/--until into a time: a duration back from now
// ("90m", "24h", "7d") or a time (RFC 3339, "2026-01-02T15:04:05" or
// "2026-01-02 15:04[:05]" in local time, "2026-01-02" at local midnight).
func parseSince(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.ParseUint(days, 10, 16); err == nil {
			return now.AddDate(0, 0, -int(n)), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("%q: give a duration back from now without a sign, e.g. 24h", s)
		}
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is neither a duration (90m, 24h, 7d) nor a time (2026-01-02T15:04:05Z, 2026-01-02 15:04, 2026-01-02)", s)
}

// formatAuditEvents prints one row per entry. Every cell is shown with
// its control characters escaped: entries hold what callers sent, which
// must not move the cursor or hide text on the operator's terminal.
func formatAuditEvents(w io.Writer, resp *cutoverv1.ListAuditEventsResponse) {
	t := newTable(w)
	row(t, "SEQ", "TIME", "SUBJECT", "METHOD", "ENVIRONMENT", "DEPLOYMENT", "CODE", "SUMMARY")
	for _, ev := range resp.GetEvents() {
		summary := ev.GetSummary()
		if ev.GetReason() != "" {
			summary += " (reason: " + ev.GetReason() + ")"
		}
		method := ev.GetMethod()
		if i := strings.LastIndex(method, "/"); i >= 0 && i < len(method)-1 {
			method = method[i+1:] // "/cutover.v1.AdminService/AbortDeployment" → "AbortDeployment"
		}
		row(t, strconv.FormatUint(ev.GetSeq(), 10), orDash(formatTime(ev.GetTime())), orDash(cell(ev.GetSubject())),
			orDash(cell(method)), orDash(cell(ev.GetEnvironment())), orDash(cell(ev.GetDeployment())),
			orDash(cell(ev.GetCode())), orDash(cell(summary)))
	}
	_ = t.Flush()
}

// cell returns s with every character that is not printable (tabs,
// newlines, escape sequences, bidirectional controls) escaped as in a Go
// string literal.
func cell(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) < 0 {
		return s
	}
	q := strconv.QuoteToGraphic(s)
	return q[1 : len(q)-1]
}
