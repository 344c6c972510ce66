// Package etcdstore keeps the controller's records (controlplane/model) in
// etcd, so that several controllers can share them: it implements
// model.Store on go.etcd.io/etcd/client/v3. Release chunks stay out of
// etcd (its values are limited to about 1.5 MiB and its database to a few
// GiB): the store is given a local chunk store (the controller's bbolt
// file) and its transactions' chunk methods go there.
//
// Key layout, under Config.Prefix (default "/cutover/"); values are the
// protobuf messages of proto/cutover/storage/v1 (storecodec; codec.go)
// unless said otherwise; <name> segments are path-escaped:
//
//	environments/<name>                model.Environment
//	applications/<name>                model.Application
//	releases/<id>                      model.Release
//	manifests/<id>                     manifestHead (JSON): size, parts, SHA-256
//	manifest_parts/<id>/<%06d>         raw bytes of part n (≤ ManifestPartSize)
//	app_releases/<app>/<id>            create time, unix ns, decimal
//	deployments/<%020d n>              model.Deployment without its agents
//	                                   (id "d-<n>")
//	deployment_agents/<%020d n>/<%06d g>  agents g×AgentsPerKey… of deployment
//	                                   n, length-prefixed (deployments.go)
//	sql_plans/<%020d n>                the deployment's SQL plan, opaque bytes
//	agents/<name>                      model.Agent
//	tokens/<id>                        model.OperatorToken
//	join_tokens/<id>                   model.JoinToken
//	enrollments/<name>                 model.Enrollment
//	audit/<%020d seq>                  model.AuditRecord, from 1, no gaps
//	meta/deployment_seq                the last n NextDeploymentID gave, decimal
//	meta/deleted/<collection>          touched by every transaction that
//	                                   deletes a key of <collection> (the
//	                                   first segment above), so that a
//	                                   listing sees deletions (below)
//	txn/<store id>                     a nonce, written by every transaction
//	                                   of one store (one process): what makes
//	                                   a commit safe to send again (commit.go)
//
// # Transactions
//
// Update serialises the updates of the process with a mutex, runs fn once,
// and commits what fn wrote in ONE etcd transaction guarded by what fn
// read (optimistic concurrency): every read of a transaction is served at
// one revision R (the first read's); a key read is compared on its mod
// revision (0 for a key read as missing); a listed range is compared with
// "no key of the range modified after R" plus the collection's deletion
// marker unmodified since R; then the guards set with SetGuards (a
// leader's election key, for fencing). If a comparison fails, the
// transaction writes nothing and Update returns an error wrapping
// errkind.Aborted; fn is never run again. Reads see the transaction's own
// buffered writes. View reads at one revision: a consistent snapshot.
//
// # Limits
//
// etcd takes at most --max-txn-ops operations (default 128) in each of a
// transaction's comparisons and writes (Config.MaxTxnOps says what the
// cluster allows). When the comparisons of the keys read exceed it, they
// are coarsened to one range comparison per collection (more false
// conflicts, never a missed one); a transaction that writes more keys
// than the limit allows (less one: the store's txn key) fails with
// errkind.ResourceExhausted and writes nothing.
// A request is at most --max-request-bytes (default 1.5 MiB): one record
// must stay well under it; a deployment's agents are kept AgentsPerKey to
// a key, rewritten only when one of them changes. A manifest can be larger: its parts (ManifestPartSize each) are
// written ahead of the transaction that records the release, each in its
// own request; they are invisible until manifests/<id> exists, are
// rewritten the same (content-addressed) by a later try, and deleted by
// CollectGarbage when the transaction that was to record them failed.
//
// A commit whose answer is lost (an etcd member or leader lost, a
// timeout) is sent again until it is known to be applied or refused, for
// up to Config.RequestTimeout (commit.go says how that stays exactly
// once); past that it fails with errkind.Unavailable: it may or may not
// have been applied.
package etcdstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/pkg/errkind"
	"github.com/cutover-dev/cutover/pkg/poll"
)

// Defaults of Config.
const (
	DefaultPrefix         = "/cutover/"
	DefaultRequestTimeout = 10 * time.Second
	DefaultAttemptTimeout = 2 * time.Second
	DefaultMaxTxnOps      = 128
)

// Config says which etcd, where in it, and where the chunks are.
type Config struct {
	// Client is a connected etcd client; the store does not close it.
	Client *clientv3.Client
	// KV, if set, is used instead of Client's: tests wrap the real one to
	// inject faults.
	KV clientv3.KV
	// Prefix is where the records live (default DefaultPrefix); it ends
	// with a slash.
	Prefix string
	// Chunks keeps release chunks (ChunkTx); the controller passes its
	// bbolt store. Nil: chunk reads find nothing and writes fail.
	Chunks model.Store
	// RequestTimeout bounds each request to etcd, its tries included
	// (default 10 s).
	RequestTimeout time.Duration
	// AttemptTimeout bounds each try (default 2 s): a request that a lost
	// leader left hanging is sent again (etcd itself answers it only after
	// about 7 s).
	AttemptTimeout time.Duration
	// MaxTxnOps is the cluster's --max-txn-ops (default 128).
	MaxTxnOps int
}

// Store is model.Store on etcd.
type Store struct {
	cfg    Config
	ctx    context.Context
	cancel context.CancelFunc
	mu     sync.Mutex // serialises Update
	// id names the store's txn key; txnRev is that key's mod revision
	// after the store's last commit (0: none yet). Both under mu.
	id     string
	txnRev int64

	guardMu sync.Mutex
	guards  []clientv3.Cmp
}

var (
	_ model.Store = (*Store)(nil)
	_ model.Tx    = (*Tx)(nil)
)

// New returns a store on cfg.Client. It reads nothing yet.
func New(cfg Config) (*Store, error) {
	if cfg.Client == nil {
		return nil, errors.New("etcdstore: Client is required")
	}
	if cfg.KV == nil {
		cfg.KV = cfg.Client.KV
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if cfg.Prefix[len(cfg.Prefix)-1] != '/' {
		cfg.Prefix += "/"
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.AttemptTimeout <= 0 {
		cfg.AttemptTimeout = min(DefaultAttemptTimeout, cfg.RequestTimeout)
	}
	if cfg.MaxTxnOps <= 0 {
		cfg.MaxTxnOps = DefaultMaxTxnOps
	}
	s := &Store{cfg: cfg, id: newStoreID()}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// Close deletes the store's txn key (commit.go; a process that dies leaves
// its few bytes behind), then ends the requests in flight; it does not
// close the client.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.attempt(func(ctx context.Context) error { // once: a stop does not wait for an unreachable etcd
		_, err := s.cfg.KV.Delete(ctx, s.txnKey())
		return err
	})
	s.cancel()
	return err
}

// SetGuards sets comparisons that every later Update's commit requires
// besides its reads: a leader sets the comparison that it still holds its
// election key, so that a deposed leader's writes fail (Aborted). None by
// default; SetGuards() clears them.
func (s *Store) SetGuards(cmps ...clientv3.Cmp) {
	s.guardMu.Lock()
	defer s.guardMu.Unlock()
	s.guards = append([]clientv3.Cmp(nil), cmps...)
}

func (s *Store) currentGuards() []clientv3.Cmp {
	s.guardMu.Lock()
	defer s.guardMu.Unlock()
	return s.guards
}

// View runs fn with reads at one revision of etcd: a consistent snapshot.
// Writes fail with FailedPrecondition.
func (s *Store) View(fn func(model.Tx) error) error {
	return fn(s.newTx(false))
}

// Update runs fn once and commits its writes in one etcd transaction,
// guarded by what fn read and by the guards; see the package comment.
func (s *Store) Update(fn func(model.Tx) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	tx := s.newTx(true)
	if err := fn(tx); err != nil {
		return err
	}
	return tx.commit()
}

// request runs an idempotent etcd request (a read, a write of a value
// that never changes), each try bounded by AttemptTimeout, tried again
// while etcd is unavailable (a member or the leader lost) for up to
// RequestTimeout in all.
func (s *Store) request(do func(ctx context.Context) error) error {
	return poll.Until(s.ctx, s.cfg.RequestTimeout, func() error {
		err := s.attempt(do)
		if err != nil && !errors.Is(err, errkind.Unavailable) {
			return poll.Permanent(err)
		}
		return err
	})
}

// attempt runs one try of an etcd request, bounded by AttemptTimeout.
func (s *Store) attempt(do func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.AttemptTimeout)
	defer cancel()
	return s.etcdError(do(ctx))
}

// etcdError gives an etcd error its kind.
func (s *Store) etcdError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, rpctypes.ErrRequestTooLarge), errors.Is(err, rpctypes.ErrTooManyOps), status.Code(err) == codes.ResourceExhausted:
		return fmt.Errorf("etcd refused the request: %v; nothing was written: %w", err, errkind.ResourceExhausted)
	case errors.Is(err, rpctypes.ErrCompacted), errors.Is(err, rpctypes.ErrFutureRev):
		return fmt.Errorf("etcd: %v; retry: %w", err, errkind.Aborted)
	default:
		return fmt.Errorf("etcd at %v: %v: %w", s.cfg.Client.Endpoints(), err, errkind.Unavailable)
	}
}
