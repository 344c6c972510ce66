package model

import "github.com/cutover-dev/cutover/pkg/manifest"

// Store keeps the controller's records. controlplane/store implements it on
// a bbolt file; every implementation passes the same contract tests.
//
// Update runs fn in a read-write transaction and commits it durably before
// it returns nil: what a caller acknowledges afterwards is kept. If fn
// fails, nothing it wrote is kept. fn runs once: an implementation with
// optimistic concurrency that finds, at commit, that what fn read has
// changed (another writer; a controller that lost its leadership) fails
// with an error wrapping errkind.Aborted instead of running fn again, and
// keeps nothing. Updates of one process are serialised. View runs fn in a
// read-only transaction.
type Store interface {
	View(fn func(Tx) error) error
	Update(fn func(Tx) error) error
}

// Tx is a transaction on a Store. The values it returns are the caller's
// own copies. Getters return an error wrapping errkind.NotFound when the
// record does not exist; Put methods create or replace.
type Tx interface {
	EnvironmentTx
	ReleaseTx
	DeploymentTx
	AgentTx
	TrustTx
	AuditTx
	ChunkTx
}

// EnvironmentTx reads and writes environments and applications.
type EnvironmentTx interface {
	Environment(name string) (*Environment, error)
	PutEnvironment(e *Environment) error
	// Environments returns every environment, sorted by name.
	Environments() ([]*Environment, error)
	Application(name string) (*Application, error)
	PutApplication(a *Application) error
	// Applications returns every application, sorted by name.
	Applications() ([]*Application, error)
}

// ReleaseTx reads and writes releases and their manifests.
type ReleaseTx interface {
	// PutRelease records a release with its canonical manifest bytes.
	PutRelease(r *Release, manifest []byte) error
	Release(id string) (*Release, error)
	Manifest(id string) ([]byte, error)
	// ReleasesOf returns an application's releases, newest first.
	ReleasesOf(app string) ([]*Release, error)
}

// DeploymentTx reads and writes deployments and their SQL plans.
type DeploymentTx interface {
	// NextDeploymentID reserves a new deployment id, "d-<n>".
	NextDeploymentID() (string, error)
	// Deployment returns a deployment with its agents, and in Tally the
	// tally of those agents (TallyAgents).
	Deployment(id string) (*Deployment, error)
	// PutDeployment creates or replaces a deployment whose id came from
	// NextDeploymentID (InvalidArgument otherwise). The header it stores
	// holds the tally of d.Agents, whatever d.Tally says.
	PutDeployment(d *Deployment) error
	// DeploymentHeader returns a deployment without its agents (Agents
	// nil), reading its header alone, with the Tally the header holds
	// (nil in a header stored before tallies were kept). NotFound if
	// unknown.
	DeploymentHeader(id string) (*Deployment, error)
	// PutDeploymentHeader replaces the header of an existing deployment:
	// every field but Agents, which is not read, Tally as given; its
	// agents stay as they are. NotFound if the deployment does not exist.
	PutDeploymentHeader(d *Deployment) error
	// DeploymentAgent returns the agent at position i of a deployment's
	// Agents, reading that agent's record (or its group) alone. NotFound
	// if the deployment or the position does not exist.
	DeploymentAgent(id string, i int) (*DeploymentAgent, error)
	// PutDeploymentAgent replaces the agent at position i of an existing
	// deployment's Agents, or appends it when i is their number, writing
	// that agent's record (or its group) alone; the header's Tally is left
	// as it is (a caller that changes what it counts moves it and puts the
	// header in the same transaction). NotFound if the deployment
	// does not exist; InvalidArgument if i is past the end. An
	// implementation with optimistic concurrency fails the commit
	// (Aborted) of one of two transactions that changed the same record.
	PutDeploymentAgent(id string, i int, a *DeploymentAgent) error
	// Deployments returns an environment's deployments (every
	// environment's if env is empty), newest first.
	Deployments(env string) ([]*Deployment, error)
	// DeploymentHeaders returns what Deployments does without the agents
	// (Agents nil, Tally as DeploymentHeader returns it), reading the
	// headers alone: for callers that look at states, times and releases.
	DeploymentHeaders(env string) ([]*Deployment, error)
	// PutSQLPlan keeps a deployment's SQL plan, opaque bytes.
	PutSQLPlan(id string, plan []byte) error
	SQLPlan(id string) ([]byte, error)
}

// AgentTx reads and writes the agents the controller has heard of.
type AgentTx interface {
	Agent(name string) (*Agent, error)
	PutAgent(a *Agent) error
	DeleteAgent(name string) error
	// Agents returns every agent, sorted by name.
	Agents() ([]*Agent, error)
}

// TrustTx reads and writes operator tokens, join tokens and enrollments.
type TrustTx interface {
	OperatorToken(id string) (*OperatorToken, error)
	PutOperatorToken(t *OperatorToken) error
	OperatorTokens() ([]*OperatorToken, error)
	JoinToken(id string) (*JoinToken, error)
	PutJoinToken(t *JoinToken) error
	Enrollment(name string) (*Enrollment, error)
	PutEnrollment(e *Enrollment) error
	DeleteEnrollment(name string) error
	Enrollments() ([]*Enrollment, error)
}

// AuditTx appends to and reads the audit log.
type AuditTx interface {
	// LastAudit returns the newest record, nil when the log is empty.
	LastAudit() (*AuditRecord, error)
	Audit(seq uint64) (*AuditRecord, error)
	// AppendAudit appends r; r.Seq must be the last record's Seq + 1
	// (Aborted otherwise: the log is never overwritten nor left with a gap).
	AppendAudit(r *AuditRecord) error
	// AuditRecords calls fn on every record, oldest first, until fn fails.
	AuditRecords(fn func(*AuditRecord) error) error
}

// ChunkTx reads and deletes release chunks (content-addressed, immutable).
type ChunkTx interface {
	HasChunk(id manifest.ChunkID) bool
	Chunk(id manifest.ChunkID) ([]byte, error)
	PutChunk(id manifest.ChunkID, data []byte) error
	DeleteChunk(id manifest.ChunkID) error
}
