// Package peer lets the agents of an environment share release chunks:
// each agent started with --peer-listen serves the chunks it holds
// (Server, PeerService over mutual TLS with agent certificates), and
// fetches through a Source that asks the peers the controller named in
// the stage command before the controller itself.
//
// Identity comes from certificates only: both sides present the agent
// certificate the controller's CA issued, and each checks the other's
// chain against that CA and its URI cutover://<environment>/agent/<name>.
// A server answers only agents of its own environment; a client talks only
// to the agent it meant to (same environment, the name the controller
// gave). Every chunk from a peer is verified by its hash before it is
// used; a peer that sends a bad one is dropped for the rest of the
// deployment and counted (cutover_transfer_peer_corrupt_total).
package peer

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	ident "github.com/cutover-dev/cutover/pkg/identity"
)

// Peer is another agent of the environment that may hold chunks.
type Peer struct {
	Name    string
	Address string
	Zone    string
	// Holds: it reported the command's releases staged or running.
	Holds bool
}

// Identity is this agent's certificate and the CA that issues every
// agent's (agent/identity.Identity).
type Identity interface {
	Agent() ident.Agent
	TLSCertificate() *tls.Certificate
	Roots() *x509.CertPool
}

// errNotEnrolled: no identity yet, so no peer may be talked to.
var errNotEnrolled = errors.New("the agent is not enrolled yet")

// serverTLS is the configuration of the peer server: this agent's
// certificate, and a client certificate required and verified against
// the CA as an agent's (the environment is checked per call, so that a
// stranger gets PERMISSION_DENIED rather than a broken handshake).
func serverTLS(id func() Identity) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		ClientAuth: tls.RequireAnyClientCert,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			i := id()
			if i == nil {
				return nil, errNotEnrolled
			}
			return i.TLSCertificate(), nil
		},
		VerifyConnection: func(cs tls.ConnectionState) error {
			i := id()
			if i == nil {
				return errNotEnrolled
			}
			_, err := ident.VerifyAgent(cs.PeerCertificates, i.Roots(), time.Now())
			return err
		},
	}
}

// clientTLS is the configuration to dial peer p with: this agent's
// certificate, and the server checked to be agent p of this agent's
// environment (instead of a host name: agents' certificates name none).
func clientTLS(i Identity, p Peer) *tls.Config {
	self := i.Agent()
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		InsecureSkipVerify: true, // VerifyConnection checks the chain and the identity
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return i.TLSCertificate(), nil
		},
		VerifyConnection: func(cs tls.ConnectionState) error {
			got, err := ident.VerifyAgent(cs.PeerCertificates, i.Roots(), time.Now())
			if err != nil {
				return fmt.Errorf("peer %s at %s: %w", p.Name, p.Address, err)
			}
			if want := (ident.Agent{Environment: self.Environment, Name: p.Name}); got != want {
				return fmt.Errorf("peer at %s is %s, want %s: %w", p.Address, got, want, ident.ErrNotAgent)
			}
			return nil
		},
	}
}
