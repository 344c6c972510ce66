package identity

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/pkg/identity/identitytest"
)

func TestVerifyController(t *testing.T) {
	ca := identitytest.NewCA(t, "cutover CA")
	other := identitytest.NewCA(t, "other CA")
	inter := identitytest.New(t, ca, identitytest.Options{CN: "intermediate", CA: true})
	server := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	leaf := func(parent *identitytest.Cert, o identitytest.Options) *x509.Certificate {
		if o.EKU == nil {
			o.EKU = server
		}
		return identitytest.New(t, parent, o).Cert
	}
	ctrl := identitytest.Options{CN: "controller", URIs: []string{ControllerURI}}
	tests := []struct {
		name    string
		peer    []*x509.Certificate
		wantErr error  // nil: success
		wantMsg string // part of the message
	}{
		{"controller", []*x509.Certificate{leaf(ca, ctrl)}, nil, ""},
		{"controller with CA in chain", []*x509.Certificate{leaf(ca, ctrl), ca.Cert}, nil, ""},
		{"through an intermediate", []*x509.Certificate{leaf(inter, ctrl), inter.Cert}, nil, ""},
		{"no controller URI", []*x509.Certificate{leaf(ca, identitytest.Options{URIs: []string{"cutover://p/agent/a"}})}, ErrNotController, "no cutover://controller URI"},
		{"other CA", []*x509.Certificate{leaf(other, ctrl), other.Cert}, ErrUnknownAuthority, "is --ca-file the controller's <data-dir>/tls/ca.crt?"},
		{"expired", []*x509.Certificate{leaf(ca, identitytest.Options{URIs: ctrl.URIs, NotBefore: time.Now().Add(-2 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})}, nil, "expired"},
		{"client-only key usage", []*x509.Certificate{leaf(ca, identitytest.Options{URIs: ctrl.URIs, EKU: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})}, nil, "usage"},
		{"nothing sent", nil, nil, "no certificate"},
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := VerifyController(roots)(tls.ConnectionState{PeerCertificates: tt.peer})
			checkErr(t, err, tt.wantErr, tt.wantMsg)
		})
	}
}

func TestVerifyPinnedController(t *testing.T) {
	ca := identitytest.NewCA(t, "cutover CA")
	other := identitytest.NewCA(t, "other CA")
	ctrl := identitytest.Options{CN: "controller", URIs: []string{ControllerURI}, EKU: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	good := identitytest.New(t, ca, ctrl).Cert
	tests := []struct {
		name    string
		hash    string
		peer    []*x509.Certificate
		wantErr error
		wantMsg string
	}{
		{"leaf and CA", CAHash(ca.Cert), []*x509.Certificate{good, ca.Cert}, nil, ""},
		{"upper-case hash", strings.ToUpper(CAHash(ca.Cert)), []*x509.Certificate{good, ca.Cert}, nil, ""},
		{"another CA's hash", CAHash(other.Cert), []*x509.Certificate{good, ca.Cert}, ErrCAHashMismatch, "wrong controller, or a token from another one"},
		{"CA not sent", CAHash(ca.Cert), []*x509.Certificate{good}, ErrCAHashMismatch, ""},
		{"CA sent but leaf from another", CAHash(ca.Cert), []*x509.Certificate{identitytest.New(t, other, ctrl).Cert, ca.Cert}, ErrUnknownAuthority, ""},
		{"not a controller", CAHash(ca.Cert), []*x509.Certificate{identitytest.New(t, ca, identitytest.Options{EKU: ctrl.EKU}).Cert, ca.Cert}, ErrNotController, ""},
		{"nothing sent", CAHash(ca.Cert), nil, ErrCAHashMismatch, ""},
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

func TestVerifyAgent(t *testing.T) {
	ca := identitytest.NewCA(t, "cutover CA")
	other := identitytest.NewCA(t, "other CA")
	client := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	leaf := func(parent *identitytest.Cert, uris ...string) *x509.Certificate {
		return identitytest.New(t, parent, identitytest.Options{CN: "agent", URIs: uris, EKU: client}).Cert
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	for _, tt := range []struct {
		name    string
		chain   []*x509.Certificate
		want    Agent
		wantErr error
		wantMsg string
	}{
		{name: "agent", chain: []*x509.Certificate{leaf(ca, "cutover://prod/agent/fe1")}, want: Agent{Environment: "prod", Name: "fe1"}},
		{name: "other CA", chain: []*x509.Certificate{leaf(other, "cutover://prod/agent/fe1")}, wantMsg: "does not verify"},
		{name: "controller", chain: []*x509.Certificate{leaf(ca, ControllerURI)}, wantErr: ErrNotAgent},
		{name: "no URI", chain: []*x509.Certificate{leaf(ca)}, wantErr: ErrNotAgent},
		{name: "server-only key usage", chain: []*x509.Certificate{identitytest.New(t, ca, identitytest.Options{URIs: []string{"cutover://prod/agent/fe1"},
			EKU: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}).Cert}, wantMsg: "usage"},
		{name: "nothing", wantErr: ErrNotAgent},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := VerifyAgent(tt.chain, roots, time.Now())
			checkErr(t, err, tt.wantErr, tt.wantMsg)
			if got != tt.want {
				t.Errorf("agent = %v, want %v", got, tt.want)
			}
		})
	}
}
