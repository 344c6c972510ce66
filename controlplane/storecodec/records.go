package storecodec

import (
	"github.com/cutover-dev/cutover/controlplane/model"
	storagev1 "github.com/cutover-dev/cutover/proto/cutover/storage/v1"
)

// plain wraps a conversion that cannot fail.
func plain[A, B any](f func(*A) B) func(*A) (B, error) {
	return func(a *A) (B, error) { return f(a), nil }
}

// plainP wraps a conversion that cannot fail and returns a value.
func plainP[A, B any](f func(*A) B) func(*A) (*B, error) {
	return func(a *A) (*B, error) { b := f(a); return &b, nil }
}

// EncodeEnvironment encodes an environment.
func EncodeEnvironment(e *model.Environment) ([]byte, error) {
	return encode(e, plain(func(e *model.Environment) *storagev1.Environment {
		m := &storagev1.Environment{
			Name: e.Name, TwoStage: e.TwoStage, Windows: strs(e.Windows), PreparedTtlNs: ns(e.PreparedTTL),
			RequireApproval: e.RequireApproval, RequirePrepared: e.RequirePrepared, KeepReleases: e.KeepReleases,
			StageRate: e.StageRate, Deadlines: toDeadlines(e.Deadlines), CreateTime: ts(e.CreateTime), UpdateTime: ts(e.UpdateTime),
			PeersDisabled: e.PeersDisabled,
		}
		if db := e.Database; db != (model.Database{}) {
			m.Database = &storagev1.Database{Driver: db.Driver, Dsn: db.DSN, StatementTimeoutNs: ns(db.StatementTimeout),
				LockTimeoutNs: ns(db.LockTimeout), ShadowDsn: db.ShadowDSN}
		}
		if len(e.DeployedVersions) > 0 {
			m.DeployedVersions = make(map[string]*storagev1.DeployedVersion, len(e.DeployedVersions))
			for app, v := range e.DeployedVersions {
				m.DeployedVersions[app] = toDeployedVersion(&v)
			}
		}
		return m
	}))
}

// DecodeEnvironment decodes what EncodeEnvironment encoded.
func DecodeEnvironment(b []byte) (*model.Environment, error) {
	return decode(b, "environment", func() *storagev1.Environment { return new(storagev1.Environment) },
		plainP(func(m *storagev1.Environment) model.Environment {
			db := m.GetDatabase()
			e := model.Environment{
				Name: m.Name, TwoStage: m.TwoStage, Windows: strs(m.Windows), PreparedTTL: dur(m.PreparedTtlNs),
				Database: model.Database{Driver: db.GetDriver(), DSN: db.GetDsn(), StatementTimeout: dur(db.GetStatementTimeoutNs()),
					LockTimeout: dur(db.GetLockTimeoutNs()), ShadowDSN: db.GetShadowDsn()},
				RequireApproval: m.RequireApproval, RequirePrepared: m.RequirePrepared, KeepReleases: m.KeepReleases,
				StageRate: m.StageRate, Deadlines: fromDeadlines(m.Deadlines), CreateTime: tm(m.CreateTime), UpdateTime: tm(m.UpdateTime),
				PeersDisabled: m.PeersDisabled,
			}
			if len(m.DeployedVersions) > 0 {
				e.DeployedVersions = make(map[string]model.DeployedVersion, len(m.DeployedVersions))
				for app, v := range m.DeployedVersions {
					e.DeployedVersions[app] = fromDeployedVersion(v)
				}
			}
			return e
		}))
}

// EncodeApplication encodes an application.
func EncodeApplication(a *model.Application) ([]byte, error) {
	return encode(a, plain(func(a *model.Application) *storagev1.Application {
		return &storagev1.Application{Name: a.Name, SourceDir: a.SourceDir, CreateTime: ts(a.CreateTime), UpdateTime: ts(a.UpdateTime)}
	}))
}

// DecodeApplication decodes what EncodeApplication encoded.
func DecodeApplication(b []byte) (*model.Application, error) {
	return decode(b, "application", func() *storagev1.Application { return new(storagev1.Application) },
		plainP(func(m *storagev1.Application) model.Application {
			return model.Application{Name: m.Name, SourceDir: m.SourceDir, CreateTime: tm(m.CreateTime), UpdateTime: tm(m.UpdateTime)}
		}))
}

// EncodeRelease encodes a release's metadata.
func EncodeRelease(r *model.Release) ([]byte, error) {
	return encode(r, plain(func(r *model.Release) *storagev1.Release {
		return &storagev1.Release{Id: r.ID, Application: r.Application, SizeBytes: r.SizeBytes, FileCount: r.FileCount,
			ChunkCount: r.ChunkCount, CreateTime: ts(r.CreateTime)}
	}))
}

// DecodeRelease decodes what EncodeRelease encoded.
func DecodeRelease(b []byte) (*model.Release, error) {
	return decode(b, "release", func() *storagev1.Release { return new(storagev1.Release) },
		plainP(func(m *storagev1.Release) model.Release {
			return model.Release{ID: m.Id, Application: m.Application, SizeBytes: m.SizeBytes, FileCount: m.FileCount,
				ChunkCount: m.ChunkCount, CreateTime: tm(m.CreateTime)}
		}))
}

// EncodeAgent encodes an agent as the controller last heard of it.
func EncodeAgent(a *model.Agent) ([]byte, error) {
	return encode(a, plain(func(a *model.Agent) *storagev1.Agent {
		m := &storagev1.Agent{Name: a.Name, Environment: a.Environment, LastSeen: ts(a.LastSeen),
			Applications: each(a.Applications, func(a *model.AgentApplication) *storagev1.AgentApplication {
				return &storagev1.AgentApplication{Name: a.Name, RunningReleaseId: a.RunningReleaseID, StagedReleaseIds: strs(a.StagedReleaseIDs)}
			})}
		if len(a.Labels) > 0 {
			m.Labels = a.Labels
		}
		return m
	}))
}

// DecodeAgent decodes what EncodeAgent encoded.
func DecodeAgent(b []byte) (*model.Agent, error) {
	return decode(b, "agent", func() *storagev1.Agent { return new(storagev1.Agent) },
		plainP(func(m *storagev1.Agent) model.Agent {
			a := model.Agent{Name: m.Name, Environment: m.Environment, LastSeen: tm(m.LastSeen),
				Applications: eachP(m.Applications, func(a *storagev1.AgentApplication) model.AgentApplication {
					return model.AgentApplication{Name: a.Name, RunningReleaseID: a.RunningReleaseId, StagedReleaseIDs: strs(a.StagedReleaseIds)}
				})}
			if len(m.Labels) > 0 {
				a.Labels = m.Labels
			}
			return a
		}))
}

// EncodeOperatorToken encodes an operator token (its secret's hash).
func EncodeOperatorToken(t *model.OperatorToken) ([]byte, error) {
	return encode(t, plain(func(t *model.OperatorToken) *storagev1.OperatorToken {
		return &storagev1.OperatorToken{Id: t.ID, Hash: t.Hash, Subject: t.Subject, Role: t.Role, Environment: t.Environment,
			CreateTime: ts(t.CreateTime), ExpireTime: ts(t.ExpireTime), RevokeTime: ts(t.RevokeTime), CreatedBy: t.CreatedBy}
	}))
}

// DecodeOperatorToken decodes what EncodeOperatorToken encoded.
func DecodeOperatorToken(b []byte) (*model.OperatorToken, error) {
	return decode(b, "operator token", func() *storagev1.OperatorToken { return new(storagev1.OperatorToken) },
		plainP(func(m *storagev1.OperatorToken) model.OperatorToken {
			return model.OperatorToken{ID: m.Id, Hash: m.Hash, Subject: m.Subject, Role: m.Role, Environment: m.Environment,
				CreateTime: tm(m.CreateTime), ExpireTime: tm(m.ExpireTime), RevokeTime: tm(m.RevokeTime), CreatedBy: m.CreatedBy}
		}))
}

// EncodeJoinToken encodes an agent join token (its secret's hash).
func EncodeJoinToken(t *model.JoinToken) ([]byte, error) {
	return encode(t, plain(func(t *model.JoinToken) *storagev1.JoinToken {
		return &storagev1.JoinToken{Id: t.ID, Hash: t.Hash, Environment: t.Environment, Name: t.Name, Uses: int64(t.Uses),
			Used: int64(t.Used), CreateTime: ts(t.CreateTime), ExpireTime: ts(t.ExpireTime), CreatedBy: t.CreatedBy}
	}))
}

// DecodeJoinToken decodes what EncodeJoinToken encoded.
func DecodeJoinToken(b []byte) (*model.JoinToken, error) {
	return decode(b, "join token", func() *storagev1.JoinToken { return new(storagev1.JoinToken) },
		plainP(func(m *storagev1.JoinToken) model.JoinToken {
			return model.JoinToken{ID: m.Id, Hash: m.Hash, Environment: m.Environment, Name: m.Name, Uses: int(m.Uses),
				Used: int(m.Used), CreateTime: tm(m.CreateTime), ExpireTime: tm(m.ExpireTime), CreatedBy: m.CreatedBy}
		}))
}

// EncodeEnrollment encodes an agent's enrollment.
func EncodeEnrollment(e *model.Enrollment) ([]byte, error) {
	return encode(e, plain(func(e *model.Enrollment) *storagev1.Enrollment {
		return &storagev1.Enrollment{Id: e.ID, Name: e.Name, Environment: e.Environment, EnrollTime: ts(e.EnrollTime),
			JoinTokenId: e.JoinTokenID, RevokeTime: ts(e.RevokeTime), KeyHash: e.KeyHash,
			Certs: each(e.Certs, func(c *model.IssuedCert) *storagev1.IssuedCert {
				return &storagev1.IssuedCert{Serial: c.Serial, NotAfter: ts(c.NotAfter)}
			})}
	}))
}

// DecodeEnrollment decodes what EncodeEnrollment encoded.
func DecodeEnrollment(b []byte) (*model.Enrollment, error) {
	return decode(b, "enrollment", func() *storagev1.Enrollment { return new(storagev1.Enrollment) },
		plainP(func(m *storagev1.Enrollment) model.Enrollment {
			return model.Enrollment{ID: m.Id, Name: m.Name, Environment: m.Environment, EnrollTime: tm(m.EnrollTime),
				JoinTokenID: m.JoinTokenId, RevokeTime: tm(m.RevokeTime), KeyHash: m.KeyHash,
				Certs: eachP(m.Certs, func(c *storagev1.IssuedCert) model.IssuedCert {
					return model.IssuedCert{Serial: c.Serial, NotAfter: tm(c.NotAfter)}
				})}
		}))
}

// EncodeAuditRecord encodes an entry of the audit log. The chain's hashes
// are over the entry's fields (pkg/auditlog), which decode unchanged.
func EncodeAuditRecord(r *model.AuditRecord) ([]byte, error) {
	return encode(r, plain(func(r *model.AuditRecord) *storagev1.AuditRecord {
		return &storagev1.AuditRecord{Seq: r.Seq, Time: ts(r.Time), Subject: r.Subject, Roles: strs(r.Roles), Method: r.Method,
			Environment: r.Environment, Deployment: r.Deployment, Summary: r.Summary, Code: r.Code, Reason: r.Reason,
			PrevHash: r.PrevHash, Hash: r.Hash}
	}))
}

// DecodeAuditRecord decodes what EncodeAuditRecord encoded.
func DecodeAuditRecord(b []byte) (*model.AuditRecord, error) {
	return decode(b, "audit record", func() *storagev1.AuditRecord { return new(storagev1.AuditRecord) },
		plainP(func(m *storagev1.AuditRecord) model.AuditRecord {
			return model.AuditRecord{Seq: m.Seq, Time: tm(m.Time), Subject: m.Subject, Roles: strs(m.Roles), Method: m.Method,
				Environment: m.Environment, Deployment: m.Deployment, Summary: m.Summary, Code: m.Code, Reason: m.Reason,
				PrevHash: m.PrevHash, Hash: m.Hash}
		}))
}
