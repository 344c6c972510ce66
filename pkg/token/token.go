// Package token formats and parses cutover's bearer secrets: operator API
// tokens and agent join tokens. A token is a public id (what the
// controller stores it under and what lists and the audit log show) and a
// random secret (of which the controller keeps only the SHA-256). A join
// token also carries the SHA-256 of the controller's CA public key, so
// that an agent given only the token can check that it talks to the right
// controller before it sends the token (kubeadm's discovery hash).
//
//	operator token: cutover.<id>.<secret>
//	join token:     cutoverjoin.<id>.<secret>.<ca hash, 64 hex>
//
// id is 16 hex characters, secret 43 characters of unpadded base64url (32
// random bytes). Nothing here does I/O.
package token

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

const (
	operatorPrefix = "cutover."
	joinPrefix     = "cutoverjoin."
	idLen          = 16
	secretLen      = 43
	hashLen        = 64
)

// Token is a parsed token.
type Token struct {
	// ID is the public part.
	ID string
	// Secret is the private part.
	Secret string
	// CAHash is the hex SHA-256 of the CA's public key (join tokens only).
	CAHash string
}

// ErrMalformed is wrapped by every parse error.
var ErrMalformed = errors.New("malformed token")

// New returns a new random token (without a CA hash).
func New() Token {
	id := make([]byte, idLen/2)
	secret := make([]byte, 32)
	_, _ = rand.Read(id) // crypto/rand.Read never fails (Go 1.24+)
	_, _ = rand.Read(secret)
	return Token{ID: hex.EncodeToString(id), Secret: base64.RawURLEncoding.EncodeToString(secret)}
}

// Operator returns t as an operator token string.
func (t Token) Operator() string { return operatorPrefix + t.ID + "." + t.Secret }

// Join returns t as a join token string; t.CAHash must be set.
func (t Token) Join() string { return joinPrefix + t.ID + "." + t.Secret + "." + t.CAHash }

// Hash is what the controller stores: the SHA-256 of the secret, hex.
func (t Token) Hash() string {
	sum := sha256.Sum256([]byte(t.Secret))
	return hex.EncodeToString(sum[:])
}

// Matches tells, in constant time, whether t's secret has the stored hash.
func (t Token) Matches(storedHash string) bool {
	return subtle.ConstantTimeCompare([]byte(t.Hash()), []byte(storedHash)) == 1
}

// ParseOperator parses an operator token. The error never contains the
// secret.
func ParseOperator(s string) (Token, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, joinPrefix) {
		return Token{}, fmt.Errorf("%w: this is an agent join token, not an operator token", ErrMalformed)
	}
	rest, ok := strings.CutPrefix(s, operatorPrefix)
	if !ok {
		return Token{}, fmt.Errorf("%w: an operator token starts with %q", ErrMalformed, operatorPrefix)
	}
	parts := strings.Split(rest, ".")
	if len(parts) != 2 {
		return Token{}, fmt.Errorf("%w: want %s<id>.<secret>", ErrMalformed, operatorPrefix)
	}
	t := Token{ID: parts[0], Secret: parts[1]}
	return t, t.check()
}

// ParseJoin parses an agent join token. The error never contains the secret.
func ParseJoin(s string) (Token, error) {
	s = strings.TrimSpace(s)
	rest, ok := strings.CutPrefix(s, joinPrefix)
	if !ok {
		return Token{}, fmt.Errorf("%w: a join token starts with %q (create one with `cutoverctl agent token create`)", ErrMalformed, joinPrefix)
	}
	parts := strings.Split(rest, ".")
	if len(parts) != 3 {
		return Token{}, fmt.Errorf("%w: want %s<id>.<secret>.<ca hash>", ErrMalformed, joinPrefix)
	}
	t := Token{ID: parts[0], Secret: parts[1], CAHash: parts[2]}
	if err := t.check(); err != nil {
		return Token{}, err
	}
	if len(t.CAHash) != hashLen || !isHex(t.CAHash) {
		return Token{}, fmt.Errorf("%w: the CA hash is not %d hex characters", ErrMalformed, hashLen)
	}
	return t, nil
}

// ID returns the public id of an operator or join token string, or "" if
// it has none; for logs and audit entries, which must not hold secrets.
func ID(s string) string {
	if t, err := ParseOperator(s); err == nil {
		return t.ID
	}
	if t, err := ParseJoin(s); err == nil {
		return t.ID
	}
	return ""
}

func (t Token) check() error {
	if len(t.ID) != idLen || !isHex(t.ID) {
		return fmt.Errorf("%w: the id is not %d hex characters", ErrMalformed, idLen)
	}
	if len(t.Secret) != secretLen {
		return fmt.Errorf("%w: the secret is not %d characters", ErrMalformed, secretLen)
	}
	if _, err := base64.RawURLEncoding.DecodeString(t.Secret); err != nil {
		return fmt.Errorf("%w: the secret is not base64url", ErrMalformed)
	}
	return nil
}

func isHex(s string) bool {
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
