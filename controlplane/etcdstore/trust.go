package etcdstore

import (
	"fmt"

	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/controlplane/storecodec"
	"github.com/cutover-dev/cutover/pkg/errkind"
)

// OperatorToken returns a token by id; NotFound if unknown.
func (tx *Tx) OperatorToken(id string) (*model.OperatorToken, error) {
	return getRecord(tx, named(collTokens, id), storecodec.DecodeOperatorToken, fmt.Errorf("token %q is unknown: %w", id, errkind.NotFound))
}

// PutOperatorToken creates or replaces a token.
func (tx *Tx) PutOperatorToken(t *model.OperatorToken) error {
	return putRecord(tx, named(collTokens, t.ID), t, storecodec.EncodeOperatorToken)
}

// OperatorTokens returns every token, by id.
func (tx *Tx) OperatorTokens() ([]*model.OperatorToken, error) {
	return listRecords(tx, collTokens, storecodec.DecodeOperatorToken, func(t *model.OperatorToken) string { return t.ID })
}

// JoinToken returns a join token by id; NotFound if unknown.
func (tx *Tx) JoinToken(id string) (*model.JoinToken, error) {
	return getRecord(tx, named(collJoinTokens, id), storecodec.DecodeJoinToken, fmt.Errorf("join token %q is unknown: %w", id, errkind.NotFound))
}

// PutJoinToken creates or replaces a join token.
func (tx *Tx) PutJoinToken(t *model.JoinToken) error {
	return putRecord(tx, named(collJoinTokens, t.ID), t, storecodec.EncodeJoinToken)
}

// Enrollment returns an agent's enrollment; NotFound if never enrolled.
func (tx *Tx) Enrollment(name string) (*model.Enrollment, error) {
	return getRecord(tx, named(collEnrollments, name), storecodec.DecodeEnrollment, fmt.Errorf("agent %q was never enrolled: %w", name, errkind.NotFound))
}

// PutEnrollment creates or replaces an enrollment.
func (tx *Tx) PutEnrollment(e *model.Enrollment) error {
	return putRecord(tx, named(collEnrollments, e.Name), e, storecodec.EncodeEnrollment)
}

// DeleteEnrollment forgets an agent's enrollment (absent is fine).
func (tx *Tx) DeleteEnrollment(name string) error { return tx.del(named(collEnrollments, name)) }

// Enrollments returns every enrollment, by name.
func (tx *Tx) Enrollments() ([]*model.Enrollment, error) {
	return listRecords(tx, collEnrollments, storecodec.DecodeEnrollment, func(e *model.Enrollment) string { return e.Name })
}
