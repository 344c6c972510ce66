package model

import "time"

// AuditRecord is one stored entry of the audit log: the fields of an
// auditlog.Entry, kept as they were hashed.
type AuditRecord struct {
	Seq         uint64    `json:"seq"`
	Time        time.Time `json:"time"`
	Subject     string    `json:"subject,omitempty"`
	Roles       []string  `json:"roles,omitempty"`
	Method      string    `json:"method,omitempty"`
	Environment string    `json:"environment,omitempty"`
	Deployment  string    `json:"deployment,omitempty"`
	Summary     string    `json:"summary,omitempty"`
	Code        string    `json:"code,omitempty"`
	Reason      string    `json:"reason,omitempty"`
	PrevHash    string    `json:"prev_hash,omitempty"`
	Hash        string    `json:"hash"`
}
