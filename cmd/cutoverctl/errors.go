package main

import (
	"errors"
	"fmt"
	"net"
	"strings"

	"google.golang.org/grpc/status"

	"github.com/cutover-dev/cutover/pkg/errkind"
	"github.com/cutover-dev/cutover/pkg/rpcerr"
)

// describeError renders err as "Code: message" when it carries a gRPC status.
func describeError(err error) string {
	var st interface{ GRPCStatus() *status.Status }
	if errors.As(err, &st) {
		s := st.GRPCStatus()
		return fmt.Sprintf("%s: %s", s.Code(), s.Message())
	}
	return err.Error()
}

// isKind reports whether err, a gRPC status or a domain error, is of kind
// kind, through pkg/rpcerr's one table.
func isKind(err, kind error) bool {
	return errors.Is(rpcerr.FromStatus(err), kind)
}

// hint says what to do about err, which happened talking to e; "" when
// there is nothing to add to the message. TLS failures reach the client as
// Unavailable with the handshake's error in the message: they are told
// apart by that message, before the kinds.
func hint(err error, e endpoint) string {
	msg := err.Error()
	host, _, splitErr := net.SplitHostPort(e.controller)
	if splitErr != nil {
		host = e.controller
	}
	switch {
	case strings.Contains(msg, "certificate signed by unknown authority"):
		h := "pass the controller's CA with --ca-file (its <data-dir>/tls/ca.crt) or CUTOVER_CA_FILE"
		if e.caFile != "" {
			h += fmt.Sprintf("; %s is not the CA that signed this controller's certificate", e.caFile)
		}
		return h + otherConfigNote(e)
	case strings.Contains(msg, "x509: certificate is valid for"), strings.Contains(msg, "x509: cannot validate certificate for"),
		strings.Contains(msg, "x509: certificate is not valid for any names"):
		return fmt.Sprintf("the controller's certificate does not name %q: give --controller one of the names it holds "+
			"(localhost, 127.0.0.1 or the controller's host names)", host)
	case strings.Contains(msg, "first record does not look like a TLS handshake"):
		return fmt.Sprintf("%s does not answer TLS: is it a cutover-controller from before TLS, or another service?", e.controller)
	case strings.Contains(msg, "tls: protocol version not supported"):
		return fmt.Sprintf("%s does not speak TLS 1.3, which cutoverctl requires: is it a cutover-controller?", e.controller)
	case strings.Contains(msg, "authentication handshake failed"):
		return fmt.Sprintf("the TLS handshake with %s failed: is it a cutover-controller, and is --ca-file its CA?", e.controller)
	case isKind(err, errkind.Unauthenticated):
		h := "give a token with --token-file, CUTOVER_TOKEN or `cutoverctl login`"
		if e.token != "" {
			h += fmt.Sprintf(" (the token from %s was refused: expired, revoked or issued by another controller?)", e.tokenFrom)
		}
		return h + otherConfigNote(e)
	case isKind(err, errkind.PermissionDenied):
		return "your token's role does not allow this; ask an admin"
	case isKind(err, errkind.Unavailable):
		return fmt.Sprintf("is a controller listening on %s? Set --controller or CUTOVER_CONTROLLER.", e.controller)
	}
	return ""
}

// otherConfigNote says that the config file's token and CA file were left
// out because another controller was asked for.
func otherConfigNote(e endpoint) string {
	if e.otherConfig == "" {
		return ""
	}
	return fmt.Sprintf("; the config file's token and CA file are for %s, not %s, so they were not used", e.otherConfig, e.controller)
}
