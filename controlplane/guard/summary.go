package guard

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/cutover-dev/cutover/controlplane/migrate"
	"github.com/cutover-dev/cutover/pkg/token"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// summarize describes a request for the audit log, without its secrets:
// join tokens are reduced to their public id, CSRs to their size, DSNs
// lose their password. The audit log cuts it to its bound.
func summarize(m proto.Message) string {
	if m == nil {
		return ""
	}
	switch r := m.(type) {
	case *cutoverv1.EnrollRequest:
		return fmt.Sprintf(`{"environment":%q,"name":%q,"join_token_id":%q,"csr_bytes":%d}`,
			r.GetEnvironment(), r.GetName(), token.ID(r.GetJoinToken()), len(r.GetCsr()))
	case *cutoverv1.RenewCertificateRequest:
		return fmt.Sprintf(`{"csr_bytes":%d}`, len(r.GetCsr()))
	case *cutoverv1.CreateEnvironmentRequest:
		r = proto.Clone(r).(*cutoverv1.CreateEnvironmentRequest)
		redactDatabase(r.GetEnvironment())
		m = r
	case *cutoverv1.UpdateEnvironmentRequest:
		r = proto.Clone(r).(*cutoverv1.UpdateEnvironmentRequest)
		redactDatabase(r.GetEnvironment())
		m = r
	case *cutoverv1.FetchChunksRequest:
		return fmt.Sprintf(`{"release_id":%q,"chunks":%d}`, r.GetReleaseId(), len(r.GetIds()))
	}
	b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
	if err != nil {
		return fmt.Sprintf("(%T)", m)
	}
	return string(b) // the audit log bounds it, after redaction
}

func redactDatabase(e *cutoverv1.Environment) {
	if db := e.GetDatabase(); db != nil && db.GetDsn() != "" {
		db.Dsn = migrate.RedactDSN(db.GetDsn())
	}
}

// reasonOf returns the reason a request gives, if any.
func reasonOf(m proto.Message) string {
	switch r := m.(type) {
	case interface{ GetForceReason() string }:
		return r.GetForceReason()
	case *cutoverv1.ApproveDeploymentRequest:
		return r.GetComment()
	case interface{ GetReason() string }:
		return r.GetReason()
	}
	return ""
}
