package store

import (
	"fmt"

	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/controlplane/storecodec"
	"github.com/cutover-dev/cutover/pkg/errkind"
)

// OperatorToken returns a token by id; NotFound if unknown.
func (tx *Tx) OperatorToken(id string) (*model.OperatorToken, error) {
	t, err := get(tx.tx.Bucket(bucketTokens), []byte(id), storecodec.DecodeOperatorToken)
	if err != nil {
		return nil, err
	}
	if t == nil {
		return nil, fmt.Errorf("token %q is unknown: %w", id, errkind.NotFound)
	}
	return t, nil
}

// PutOperatorToken creates or replaces a token.
func (tx *Tx) PutOperatorToken(t *model.OperatorToken) error {
	return put(tx.tx.Bucket(bucketTokens), []byte(t.ID), t, storecodec.EncodeOperatorToken)
}

// OperatorTokens returns every token, by id.
func (tx *Tx) OperatorTokens() ([]*model.OperatorToken, error) {
	return list(tx.tx.Bucket(bucketTokens), storecodec.DecodeOperatorToken)
}

// JoinToken returns a join token by id; NotFound if unknown.
func (tx *Tx) JoinToken(id string) (*model.JoinToken, error) {
	t, err := get(tx.tx.Bucket(bucketJoinTokens), []byte(id), storecodec.DecodeJoinToken)
	if err != nil {
		return nil, err
	}
	if t == nil {
		return nil, fmt.Errorf("join token %q is unknown: %w", id, errkind.NotFound)
	}
	return t, nil
}

// PutJoinToken creates or replaces a join token.
func (tx *Tx) PutJoinToken(t *model.JoinToken) error {
	return put(tx.tx.Bucket(bucketJoinTokens), []byte(t.ID), t, storecodec.EncodeJoinToken)
}

// Enrollment returns an agent's enrollment; NotFound if never enrolled.
func (tx *Tx) Enrollment(name string) (*model.Enrollment, error) {
	e, err := get(tx.tx.Bucket(bucketEnrollments), []byte(name), storecodec.DecodeEnrollment)
	if err != nil {
		return nil, err
	}
	if e == nil {
		return nil, fmt.Errorf("agent %q was never enrolled: %w", name, errkind.NotFound)
	}
	return e, nil
}

// PutEnrollment creates or replaces an enrollment.
func (tx *Tx) PutEnrollment(e *model.Enrollment) error {
	return put(tx.tx.Bucket(bucketEnrollments), []byte(e.Name), e, storecodec.EncodeEnrollment)
}

// DeleteEnrollment forgets an agent's enrollment (absent is fine): its
// certificates are refused from then on and the name may enroll again.
func (tx *Tx) DeleteEnrollment(name string) error {
	return tx.tx.Bucket(bucketEnrollments).Delete([]byte(name))
}

// Enrollments returns every enrollment, by name.
func (tx *Tx) Enrollments() ([]*model.Enrollment, error) {
	return list(tx.tx.Bucket(bucketEnrollments), storecodec.DecodeEnrollment)
}
