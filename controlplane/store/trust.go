package store

import (
	"fmt"

	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/pkg/errkind"
)

func (tx *Tx) OperatorToken(id string) (*model.OperatorToken, error) {
	t := new(model.OperatorToken)
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
func (tx *Tx) PutOperatorToken(t *model.OperatorToken) error {
	return putJSON(tx.tx.Bucket(bucketTokens), []byte(t.ID), t)
}

// OperatorTokens returns every token, by id.
func (tx *Tx) OperatorTokens() ([]*model.OperatorToken, error) {
	return listJSON[model.OperatorToken](tx.tx.Bucket(bucketTokens))
}

// JoinToken returns a join token by id; NotFound if unknown.
func (tx *Tx) JoinToken(id string) (*model.JoinToken, error) {
	t := new(model.JoinToken)
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
func (tx *Tx) PutJoinToken(t *model.JoinToken) error {
	return putJSON(tx.tx.Bucket(bucketJoinTokens), []byte(t.ID), t)
}

// Enrollment returns an agent's enrollment; NotFound if never enrolled.
func (tx *Tx) Enrollment(name string) (*model.Enrollment, error) {
	e := new(model.Enrollment)
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
func (tx *Tx) PutEnrollment(e *model.Enrollment) error {
	return putJSON(tx.tx.Bucket(bucketEnrollments), []byte(e.Name), e)
}

// DeleteEnrollment forgets an agent's enrollment (absent is fine): its
// certificates are refused from then on and the name may enroll again.
func (tx *Tx) DeleteEnrollment(name string) error {
	return tx.tx.Bucket(bucketEnrollments).Delete([]byte(name))
}

// Enrollments returns every enrollment, by name.
func (tx *Tx) Enrollments() ([]*model.Enrollment, error) {
	return listJSON[model.Enrollment](tx.tx.Bucket(bucketEnrollments))
}
