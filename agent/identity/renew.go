package identity

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"time"

	ident "github.com/cutover-dev/cutover/pkg/identity"
	"github.com/cutover-dev/cutover/pkg/rpcerr"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// Retry bounds of Run after a failed renewal.
const (
	minRetry = 10 * time.Second
	maxRetry = 10 * time.Minute
)

// RenewAt returns when the current certificate is due for renewal: after
// 2/3 of its lifetime (pkg/identity.RenewAt).
func (i *Identity) RenewAt() time.Time { return ident.RenewAt(i.Certificate()) }

// Renew makes a new key, has the controller sign it through client (a
// connection made with ClientTLSConfig, which authenticates the agent),
// stores the new certificate and key atomically and uses them for new
// connections. On error the current identity stays as it was, in memory
// and on disk.
func (i *Identity) Renew(ctx context.Context, client cutoverv1.AgentServiceClient) error {
	i.renewMu.Lock()
	defer i.renewMu.Unlock()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("renew: generate a key: %w", err)
	}
	csr, err := newCSR(i.agent, key)
	if err != nil {
		return err
	}
	resp, err := client.RenewCertificate(ctx, &cutoverv1.RenewCertificateRequest{Csr: csr})
	if err != nil {
		return fmt.Errorf("renew the agent's certificate: %w; the current one stays in use until %s", rpcerr.FromStatus(err), i.NotAfter().UTC().Format(time.RFC3339))
	}
	cert, err := x509.ParseCertificate(resp.GetCertificate())
	if err != nil {
		return fmt.Errorf("renew: the controller's certificate: %w", err)
	}
	if err := checkCert(cert, key, i.agent, i.roots.Load()); err != nil {
		return fmt.Errorf("renew: the controller's answer: %w; nothing was changed", err)
	}
	tc, err := certKey(cert, key)
	if err != nil {
		return err
	}
	if err := store(i.cfg.Dir, cert, key, nil); err != nil {
		return err
	}
	i.cert.Store(tc)
	i.cfg.Log.Info("renewed the agent's certificate", "identity", i.agent.URI(), "serial", cert.SerialNumber.Text(16),
		"not_after", cert.NotAfter, "renew_at", i.RenewAt())
	return nil
}

// Run renews the certificate at RenewAt through client, until ctx ends;
// it then returns nil. A failed renewal is logged and retried with
// backoff. It looks at the clock at least every hour, so that a
// suspended host or a clock step does not delay a renewal by much.
func (i *Identity) Run(ctx context.Context, client cutoverv1.AgentServiceClient) error {
	retry := minRetry
	for {
		wait := i.RenewAt().Sub(i.cfg.Clock())
		if wait <= 0 {
			if err := i.Renew(ctx, client); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				level := i.cfg.Log.Warn
				if i.NotAfter().Sub(i.cfg.Clock()) < time.Hour {
					level = i.cfg.Log.Error
				}
				level("renew the agent's certificate; retrying", "err", err, "retry_in", retry, "not_after", i.NotAfter())
				wait, retry = retry, min(2*retry, maxRetry)
			} else {
				retry = minRetry
				if wait = i.RenewAt().Sub(i.cfg.Clock()); wait <= 0 { // the controller gave a short certificate
					wait = minRetry
				}
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
