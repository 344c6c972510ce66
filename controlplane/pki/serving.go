package pki

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net"
	"net/url"
	"slices"
	"time"

	"github.com/cutover-dev/cutover/pkg/identity"
)

// Retry bounds of Run after a failed renewal.
const (
	minRetry = 10 * time.Second
	maxRetry = 10 * time.Minute
)

// RenewAt returns when the current serving certificate is due for
// renewal: after 2/3 of its lifetime (identity.RenewAt).
func (a *Authority) RenewAt() time.Time {
	return identity.RenewAt(a.serving.Load().Leaf)
}

// RenewIfDue issues a new serving certificate if the current one is due
// at Config.Clock() (see RenewAt), and says whether it did. New TLS
// connections get the new certificate; open ones keep theirs.
func (a *Authority) RenewIfDue() (bool, error) {
	a.renewMu.Lock()
	defer a.renewMu.Unlock()
	if a.cfg.Clock().Before(a.RenewAt()) {
		return false, nil
	}
	if err := a.renewLocked(); err != nil {
		return false, err
	}
	return true, nil
}

// Run renews the serving certificate when it is due, until ctx ends; it
// then returns nil. A failed renewal is logged and retried with backoff
// while the current certificate still serves. It looks at the clock at
// least every hour, so that a suspended host or a clock step does not
// delay a renewal by much.
func (a *Authority) Run(ctx context.Context) error {
	retry := minRetry
	for {
		var wait time.Duration
		if _, err := a.RenewIfDue(); err != nil {
			a.cfg.Log.Error("renew the controller's serving certificate; the current one keeps serving", "err", err,
				"not_after", a.ServingCert().NotAfter, "retry_in", retry)
			wait, retry = retry, min(2*retry, maxRetry)
		} else {
			retry = minRetry
			wait = a.RenewAt().Sub(a.cfg.Clock())
			if wait <= 0 { // due at once again: the CA expires before the new certificate would
				wait = minRetry
			}
		}
		t := time.NewTimer(min(wait, time.Hour))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// renew issues a new serving certificate and swaps it in.
func (a *Authority) renew() error {
	a.renewMu.Lock()
	defer a.renewMu.Unlock()
	return a.renewLocked()
}

func (a *Authority) renewLocked() error {
	c, err := a.issueServing()
	if err != nil {
		return err
	}
	a.serving.Store(c)
	a.cfg.Log.Info("issued the controller's serving certificate", "serial", c.Leaf.SerialNumber.Text(16),
		"not_after", c.Leaf.NotAfter, "renew_at", identity.RenewAt(c.Leaf))
	return nil
}

// issueServing returns a new serving certificate whose chain is the leaf
// then the CA.
func (a *Authority) issueServing() (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pki: generate the serving key: %w", err)
	}
	u, err := url.Parse(identity.ControllerURI)
	if err != nil {
		return nil, err
	}
	now := a.cfg.Clock()
	tmpl := &x509.Certificate{
		SerialNumber:          newSerial(),
		Subject:               pkix.Name{CommonName: "cutover controller"},
		NotBefore:             now.Add(-Backdate),
		NotAfter:              a.notAfter(now, a.cfg.ServingTTL),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		URIs:                  []*url.URL{u},
	}
	tmpl.DNSNames, tmpl.IPAddresses = splitHosts(a.cfg.Hosts)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.caCert, key.Public(), a.caKey)
	if err != nil {
		return nil, fmt.Errorf("pki: sign the serving certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("pki: parse the serving certificate: %w", err)
	}
	return &tls.Certificate{Certificate: [][]byte{der, a.caCert.Raw}, PrivateKey: key, Leaf: leaf}, nil
}

// splitHosts returns hosts plus the loopback names, deduplicated, as DNS
// names and IP addresses.
func splitHosts(hosts []string) (dns []string, ips []net.IP) {
	for _, h := range append([]string{"localhost", "127.0.0.1", "::1"}, hosts...) {
		if ip := net.ParseIP(h); ip != nil {
			if !slices.ContainsFunc(ips, ip.Equal) {
				ips = append(ips, ip)
			}
		} else if h != "" && !slices.Contains(dns, h) {
			dns = append(dns, h)
		}
	}
	return dns, ips
}
