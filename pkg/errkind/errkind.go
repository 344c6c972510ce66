// Package errkind names the kinds of error that cutover's domain code returns,
// without any transport. Domain code wraps a kind with context:
//
//	fmt.Errorf("deployment %q: %w", id, errkind.NotFound)
//
// and callers test with errors.Is. pkg/rpcerr maps kinds to gRPC codes.
package errkind

import (
	"errors"
	"strings"
)

// The kinds. Each is a sentinel; wrap it with %w.
var (
	// NotFound: the named thing does not exist.
	NotFound = errors.New("not found")
	// AlreadyExists: a thing with that name exists.
	AlreadyExists = errors.New("already exists")
	// InvalidArgument: the request is malformed, whatever the state.
	InvalidArgument = errors.New("invalid argument")
	// FailedPrecondition: the request is valid but the state does not allow it.
	FailedPrecondition = errors.New("failed precondition")
	// Aborted: a concurrent change got in the way; retry.
	Aborted = errors.New("aborted")
	// Unavailable: a dependency (agent, database) cannot be reached now.
	Unavailable = errors.New("unavailable")
	// DeadlineExceeded: a time limit ran out.
	DeadlineExceeded = errors.New("deadline exceeded")
	// Unauthenticated: the caller did not prove who it is (no valid token or
	// certificate).
	Unauthenticated = errors.New("unauthenticated")
	// PermissionDenied: the caller may not do this.
	PermissionDenied = errors.New("permission denied")
	// DataLoss: stored or received data is corrupt.
	DataLoss = errors.New("data loss")
	// ResourceExhausted: the request is well formed but what it makes (a
	// release, for example) is larger than a documented limit allows
	// (docs/limits.md).
	ResourceExhausted = errors.New("resource exhausted")
)

// kinds lists the kinds, for Message.
var kinds = []error{NotFound, AlreadyExists, InvalidArgument, FailedPrecondition, Aborted,
	Unavailable, DeadlineExceeded, Unauthenticated, PermissionDenied, DataLoss, ResourceExhausted}

// Message returns err's text without the ": <kind>" that wrapping a kind
// with %w leaves at its end: for a caller that gives err's message another
// kind, or another ending.
func Message(err error) string {
	msg := err.Error()
	for _, k := range kinds {
		if errors.Is(err, k) {
			if m, ok := strings.CutSuffix(msg, ": "+k.Error()); ok {
				return m
			}
		}
	}
	return msg
}

// Kinded is an error whose message is shown as is and whose kind is Kind.
// It is what clients get back from pkg/rpcerr.
type Kinded struct {
	Msg  string
	Kind error
}

// Error returns the message.
func (e *Kinded) Error() string { return e.Msg }

// Unwrap returns the kind, so errors.Is(err, errkind.NotFound) works.
func (e *Kinded) Unwrap() error { return e.Kind }

// New returns an error with message msg and kind kind.
func New(kind error, msg string) error { return &Kinded{Msg: msg, Kind: kind} }

// NotLeader is the error of a controller that is not the leader of the
// controllers sharing its etcd: its kind is Unavailable, and Leader, when
// known, is the leader's address, where the caller should go instead.
// pkg/rpcerr carries Leader in the status (google.rpc.ErrorInfo, reason
// NOT_LEADER), so that clients can follow it.
type NotLeader struct {
	Leader string
}

// Error says where the leader is.
func (e *NotLeader) Error() string {
	if e.Leader == "" {
		return "this controller is not the leader, and no leader is elected now; retry in a few seconds"
	}
	return "this controller is not the leader; the leader is at " + e.Leader
}

// Unwrap returns Unavailable.
func (e *NotLeader) Unwrap() error { return Unavailable }
