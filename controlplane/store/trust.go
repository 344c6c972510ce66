package store

import (
	"fmt"
	"time"

	"github.com/cutover-dev/cutover/pkg/errkind"
)

// OperatorToken is an operator API token. Only the SHA-256 of its secret
// is kept.
type OperatorToken struct {
	ID          string    `json:"id"`
	Hash        string    `json:"hash"`
	Subject     string    `json:"subject"`
	Role        string    `json:"role"`
	Environment string    `json:"environment,omitempty"`
	CreateTime  time.Time `json:"create_time"`
	ExpireTime  time.Time `json:"expire_time,omitzero"`
	RevokeTime  time.Time `json:"revoke_time,omitzero"`
	CreatedBy   string    `json:"created_by,omitempty"`
}

// JoinToken is an agent join token. Only the SHA-256 of its secret is kept.
type JoinToken struct {
	ID          string    `json:"id"`
	Hash        string    `json:"hash"`
	Environment string    `json:"environment"`
	Name        string    `json:"name,omitempty"`
	Uses        int       `json:"uses"`
	Used        int       `json:"used"`
	CreateTime  time.Time `json:"create_time"`
	ExpireTime  time.Time `json:"expire_time"`
	CreatedBy   string    `json:"created_by,omitempty"`
}

// Enrollment is an agent's enrollment: the certificates issued to its
// identity that have not expired, and whether it was revoked. Agent names
// are unique across environments, as in agents/.
type Enrollment struct {
	// ID names this enrollment; every certificate issued under it carries
	// it (Subject.SerialNumber), so that certificates of an earlier
	// enrollment of the same name are refused.
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Environment string    `json:"environment"`
	EnrollTime  time.Time `json:"enroll_time"`
	JoinTokenID string    `json:"join_token_id,omitempty"`
	// Certs are the certificates issued under this enrollment that had not
	// expired when the last was issued, oldest first (for listing).
	Certs      []IssuedCert `json:"certs,omitempty"`
	RevokeTime time.Time    `json:"revoke_time,omitzero"`
}

// IssuedCert is one certificate issued to an agent.
type IssuedCert struct {
	Serial   string    `json:"serial"` // hex
	NotAfter time.Time `json:"not_after"`
}

// OperatorToken returns a token by id; NotFound if unknown.
func (tx *Tx) OperatorToken(id string) (*OperatorToken, error) {
	t := new(OperatorToken)
	ok, err := getJSON(tx.tx.Bucket(bucketTokens), []byte(id), t)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("token %q is unknown: %w", id, errkind.NotFound)
	}
	return t, nil
}

// PutOperatorToken creates or replaces a token.
func (tx *Tx) PutOperatorToken(t *OperatorToken) error {
	return putJSON(tx.tx.Bucket(bucketTokens), []byte(t.ID), t)
}

// OperatorTokens returns every token, by id.
func (tx *Tx) OperatorTokens() ([]*OperatorToken, error) {
	return listJSON[OperatorToken](tx.tx.Bucket(bucketTokens))
}

// JoinToken returns a join token by id; NotFound if unknown.
func (tx *Tx) JoinToken(id string) (*JoinToken, error) {
	t := new(JoinToken)
	ok, err := getJSON(tx.tx.Bucket(bucketJoinTokens), []byte(id), t)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("join token %q is unknown: %w", id, errkind.NotFound)
	}
	return t, nil
}

// PutJoinToken creates or replaces a join token.
func (tx *Tx) PutJoinToken(t *JoinToken) error {
	return putJSON(tx.tx.Bucket(bucketJoinTokens), []byte(t.ID), t)
}

// Enrollment returns an agent's enrollment; NotFound if never enrolled.
func (tx *Tx) Enrollment(name string) (*Enrollment, error) {
	e := new(Enrollment)
	ok, err := getJSON(tx.tx.Bucket(bucketEnrollments), []byte(name), e)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("agent %q was never enrolled: %w", name, errkind.NotFound)
	}
	return e, nil
}

// PutEnrollment creates or replaces an enrollment.
func (tx *Tx) PutEnrollment(e *Enrollment) error {
	return putJSON(tx.tx.Bucket(bucketEnrollments), []byte(e.Name), e)
}

// DeleteEnrollment forgets an agent's enrollment (absent is fine): its
// certificates are refused from then on and the name may enroll again.
func (tx *Tx) DeleteEnrollment(name string) error {
	return tx.tx.Bucket(bucketEnrollments).Delete([]byte(name))
}

// Enrollments returns every enrollment, by name.
func (tx *Tx) Enrollments() ([]*Enrollment, error) {
	return listJSON[Enrollment](tx.tx.Bucket(bucketEnrollments))
}
