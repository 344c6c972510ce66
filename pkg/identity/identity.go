// Package identity names the parties of cutover's mutual TLS, SPIFFE
// style, as URI SANs in their certificates:
//
//	controller: cutover://controller
//	agent:      cutover://<environment>/agent/<name>
//
// and checks the controller's certificate from the side of a client
// (agent or cutoverctl): the chain must lead to the controller's CA and
// the leaf must carry cutover://controller. The role is checked instead
// of the host name (as Nomad's verify_server_hostname checks
// server.<region>.nomad): the controller is whoever holds a certificate
// that its CA issued with the controller URI, whatever address it was
// dialled at.
//
// It is shared by the controller, the agent and the CLI; it does no I/O
// and imports no transport.
package identity

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cutover-dev/cutover/pkg/appspec"
)

// ControllerURI is the URI SAN of a controller's serving certificate.
const ControllerURI = "cutover://controller"

const (
	scheme       = "cutover"
	uriPrefix    = scheme + "://"
	agentSegment = "agent"
)

// ErrNotAgent is wrapped by the errors of ParseAgentURI and AgentFromCert.
var ErrNotAgent = errors.New("not a cutover agent identity")

// Agent is an agent's identity: the environment it serves and its name
// in that environment. Both are DNS labels (appspec.ValidName).
type Agent struct {
	Environment string
	Name        string
}

// URI returns the agent's URI SAN, cutover://<environment>/agent/<name>.
func (a Agent) URI() string {
	return uriPrefix + a.Environment + "/" + agentSegment + "/" + a.Name
}

// String returns "<environment>/<name>", as logs and certificates' common
// names show an agent.
func (a Agent) String() string { return a.Environment + "/" + a.Name }

// Validate checks that the environment and the name are DNS labels. Its
// error wraps both ErrNotAgent and errkind.InvalidArgument.
func (a Agent) Validate() error {
	if err := appspec.ValidName(a.Environment); err != nil {
		return fmt.Errorf("%w: environment: %w", ErrNotAgent, err)
	}
	if err := appspec.ValidName(a.Name); err != nil {
		return fmt.Errorf("%w: name: %w", ErrNotAgent, err)
	}
	return nil
}

// ParseAgentURI parses cutover://<environment>/agent/<name>. Anything
// else (another scheme, a port, a query, a fragment, extra path segments,
// names that are not DNS labels) is refused with an error that wraps
// ErrNotAgent.
func ParseAgentURI(s string) (Agent, error) {
	rest, ok := strings.CutPrefix(s, uriPrefix)
	if !ok {
		return Agent{}, fmt.Errorf("%w: %q does not start with %q", ErrNotAgent, s, uriPrefix)
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 3 || parts[1] != agentSegment {
		return Agent{}, fmt.Errorf("%w: %q is not of the form %s<environment>/%s/<name>", ErrNotAgent, s, uriPrefix, agentSegment)
	}
	a := Agent{Environment: parts[0], Name: parts[2]}
	if err := a.Validate(); err != nil {
		return Agent{}, err
	}
	return a, nil
}

// AgentFromCert returns the agent identity of cert: its one cutover agent
// URI SAN. A certificate with no cutover URI, with more than one, or with
// the controller's URI as well, is refused (ErrNotAgent). It does not
// verify the certificate; the TLS handshake did that.
func AgentFromCert(cert *x509.Certificate) (Agent, error) {
	if cert == nil {
		return Agent{}, fmt.Errorf("%w: no certificate", ErrNotAgent)
	}
	var found []string
	for _, u := range cert.URIs {
		if u.Scheme != scheme {
			continue
		}
		s := u.String()
		if s == ControllerURI {
			return Agent{}, fmt.Errorf("%w: the certificate is a controller's (%s)", ErrNotAgent, ControllerURI)
		}
		found = append(found, s)
	}
	switch len(found) {
	case 0:
		return Agent{}, fmt.Errorf("%w: the certificate has no %s URI", ErrNotAgent, uriPrefix)
	case 1:
		return ParseAgentURI(found[0])
	default:
		return Agent{}, fmt.Errorf("%w: the certificate has %d %s URIs (%s), want one", ErrNotAgent, len(found), uriPrefix, strings.Join(found, ", "))
	}
}

// IsController tells whether cert carries the URI SAN cutover://controller.
// It does not verify the certificate.
func IsController(cert *x509.Certificate) bool {
	if cert == nil {
		return false
	}
	for _, u := range cert.URIs {
		if u.String() == ControllerURI {
			return true
		}
	}
	return false
}

// CAHash returns the hex SHA-256 (64 lowercase characters) of caCert's DER
// SubjectPublicKeyInfo: what join tokens carry to pin the controller's CA.
// It stays the same when the CA certificate is reissued with the same key.
func CAHash(caCert *x509.Certificate) string {
	sum := sha256.Sum256(caCert.RawSubjectPublicKeyInfo)
	return hex.EncodeToString(sum[:])
}

// RenewAt returns when cert is due for renewal: after two thirds of its
// validity. The controller's serving certificate and the agents'
// certificates are both renewed then.
func RenewAt(cert *x509.Certificate) time.Time {
	return cert.NotBefore.Add(cert.NotAfter.Sub(cert.NotBefore) * 2 / 3)
}
