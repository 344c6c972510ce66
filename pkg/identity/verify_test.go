package identity

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestVerifyController(t *testing.T) {
	ca := newCA(t, "cutover CA")
	other := newCA(t, "other CA")
	inter := newCert(t, ca, certOpts{cn: "intermediate", ca: true})
	server := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	leaf := func(parent *testCert, o certOpts) *x509.Certificate {
		if o.eku == nil {
			o.eku = server
		}
		return newCert(t, parent, o).cert
	}
	ctrl := certOpts{cn: "controller", uris: []string{ControllerURI}}
	tests := []struct {
		name    string
		peer    []*x509.Certificate
		wantErr error  // nil: success
		wantMsg string // part of the message
	}{
		{"controller", []*x509.Certificate{leaf(ca, ctrl)}, nil, ""},
		{"controller with CA in chain", []*x509.Certificate{leaf(ca, ctrl), ca.cert}, nil, ""},
		{"through an intermediate", []*x509.Certificate{leaf(inter, ctrl), inter.cert}, nil, ""},
		{"no controller URI", []*x509.Certificate{leaf(ca, certOpts{uris: []string{"cutover://p/agent/a"}})}, ErrNotController, "no cutover://controller URI"},
		{"other CA", []*x509.Certificate{leaf(other, ctrl), other.cert}, ErrUnknownAuthority, "is --ca-file the controller's <data-dir>/tls/ca.crt?"},
		{"expired", []*x509.Certificate{leaf(ca, certOpts{uris: ctrl.uris, notBefore: time.Now().Add(-2 * time.Hour), notAfter: time.Now().Add(-time.Hour)})}, nil, "expired"},
		{"client-only key usage", []*x509.Certificate{leaf(ca, certOpts{uris: ctrl.uris, eku: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})}, nil, "usage"},
		{"nothing sent", nil, nil, "no certificate"},
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := VerifyController(roots)(tls.ConnectionState{PeerCertificates: tt.peer})
			checkErr(t, err, tt.wantErr, tt.wantMsg)
		})
	}
}

func TestVerifyPinnedController(t *testing.T) {
	ca := newCA(t, "cutover CA")
	other := newCA(t, "other CA")
	ctrl := certOpts{cn: "controller", uris: []string{ControllerURI}, eku: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	good := newCert(t, ca, ctrl).cert
	tests := []struct {
		name    string
		hash    string
		peer    []*x509.Certificate
		wantErr error
		wantMsg string
	}{
		{"leaf and CA", CAHash(ca.cert), []*x509.Certificate{good, ca.cert}, nil, ""},
		{"upper-case hash", strings.ToUpper(CAHash(ca.cert)), []*x509.Certificate{good, ca.cert}, nil, ""},
		{"another CA's hash", CAHash(other.cert), []*x509.Certificate{good, ca.cert}, ErrCAHashMismatch, "wrong controller, or a token from another one"},
		{"CA not sent", CAHash(ca.cert), []*x509.Certificate{good}, ErrCAHashMismatch, ""},
		{"CA sent but leaf from another", CAHash(ca.cert), []*x509.Certificate{newCert(t, other, ctrl).cert, ca.cert}, ErrUnknownAuthority, ""},
		{"not a controller", CAHash(ca.cert), []*x509.Certificate{newCert(t, ca, certOpts{eku: ctrl.eku}).cert, ca.cert}, ErrNotController, ""},
		{"nothing sent", CAHash(ca.cert), nil, ErrCAHashMismatch, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := VerifyPinnedController(tt.hash)(tls.ConnectionState{PeerCertificates: tt.peer})
			checkErr(t, err, tt.wantErr, tt.wantMsg)
		})
	}
}

// checkErr fails t unless err is nil when wantErr and wantMsg are empty,
// or else wraps wantErr (if set) and contains wantMsg.
func checkErr(t *testing.T, err, wantErr error, wantMsg string) {
	t.Helper()
	if wantErr == nil && wantMsg == "" {
		if err != nil {
			t.Fatalf("err = %v, want nil", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("err = nil, want %v %q", wantErr, wantMsg)
	}
	if wantErr != nil && !errors.Is(err, wantErr) {
		t.Errorf("err = %v, want %v", err, wantErr)
	}
	if !strings.Contains(err.Error(), wantMsg) {
		t.Errorf("err = %v, want it to contain %q", err, wantMsg)
	}
}
