package model

import "time"

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
	// KeyHash is the hex SHA-256 of the enrolled key's DER
	// SubjectPublicKeyInfo: an agent that enrolls again with the same key
	// and the same join token (the first answer was lost) is answered
	// again instead of refused as enrolled already.
	KeyHash string `json:"key_hash,omitempty"`
}

// IssuedCert is one certificate issued to an agent.
type IssuedCert struct {
	Serial   string    `json:"serial"` // hex
	NotAfter time.Time `json:"not_after"`
}
