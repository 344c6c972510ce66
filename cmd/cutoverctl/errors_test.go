package main

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cutover-dev/cutover/pkg/errkind"
)

func TestHint(t *testing.T) {
	anon := endpoint{controller: "ctl.internal:7070"}
	withToken := endpoint{controller: "ctl.internal:7070", caFile: "/etc/ca.crt", token: testToken, tokenFrom: "CUTOVER_TOKEN"}
	overridden := endpoint{controller: "other:7070", otherConfig: "ctl.internal:7070"}
	handshake := func(detail string) error {
		return status.Error(codes.Unavailable, `connection error: desc = "transport: authentication handshake failed: `+detail+`"`)
	}
	tests := []struct {
		name string
		err  error
		e    endpoint
		want string // "" for no hint
	}{
		{"unauthenticated, no token", status.Error(codes.Unauthenticated, "no token"), anon,
			"give a token with --token-file, CUTOVER_TOKEN or `cutoverctl login`"},
		{"unauthenticated, a token", status.Error(codes.Unauthenticated, "token expired"), withToken,
			"give a token with --token-file, CUTOVER_TOKEN or `cutoverctl login` (the token from CUTOVER_TOKEN was refused"},
		{"unauthenticated, config for another controller", status.Error(codes.Unauthenticated, "no token"), overridden,
			"the config file's token and CA file are for ctl.internal:7070, not other:7070"},
		{"unauthenticated, wrapped", fmt.Errorf("login: %w", status.Error(codes.Unauthenticated, "no")), anon, "give a token"},
		{"unauthenticated, as a kind", errkind.New(errkind.Unauthenticated, "no"), anon, "give a token"},
		{"permission denied", status.Error(codes.PermissionDenied, "viewer may not"), withToken,
			"your token's role does not allow this; ask an admin"},
		{"unknown authority", handshake("tls: failed to verify certificate: x509: certificate signed by unknown authority"), anon,
			"pass the controller's CA with --ca-file (its <data-dir>/tls/ca.crt) or CUTOVER_CA_FILE"},
		{"unknown authority with a CA file", handshake("x509: certificate signed by unknown authority"), withToken,
			"/etc/ca.crt is not the CA that signed this controller's certificate"},
		{"wrong name", handshake("x509: certificate is valid for localhost, not ctl.internal"), anon,
			`the controller's certificate does not name "ctl.internal"`},
		{"not TLS", handshake("tls: first record does not look like a TLS handshake"), anon,
			"ctl.internal:7070 does not answer TLS"},
		{"old TLS", handshake("remote error: tls: protocol version not supported"), anon,
			"ctl.internal:7070 does not speak TLS 1.3"},
		{"unavailable", status.Error(codes.Unavailable, "connection refused"), anon,
			"is a controller listening on ctl.internal:7070?"},
		{"not found: the message says it all", status.Error(codes.NotFound, "no such environment"), anon, ""},
		{"a local error", errors.New("--role \"boss\": want one of viewer"), anon, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := hint(tt.err, tt.e)
			if tt.want == "" && got != "" || !strings.Contains(got, tt.want) {
				t.Errorf("hint = %q, want %q", got, tt.want)
			}
			if tt.e.token != "" && strings.Contains(got, tt.e.token) {
				t.Errorf("hint shows the token: %q", got)
			}
		})
	}
}
