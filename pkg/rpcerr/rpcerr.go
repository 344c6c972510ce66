// Package rpcerr converts between errkind kinds and gRPC status codes, both
// ways. It holds the one mapping table of the project.
package rpcerr

import (
	"context"
	"errors"
	"log/slog"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cutover-dev/cutover/pkg/errkind"
)

// table maps each kind to its code. The order matters only for errors that
// wrap several kinds: the first match wins.
var table = []struct {
	kind error
	code codes.Code
}{
	{errkind.NotFound, codes.NotFound},
	{errkind.AlreadyExists, codes.AlreadyExists},
	{errkind.InvalidArgument, codes.InvalidArgument},
	{errkind.FailedPrecondition, codes.FailedPrecondition},
	{errkind.Aborted, codes.Aborted},
	{errkind.Unavailable, codes.Unavailable},
	{errkind.DeadlineExceeded, codes.DeadlineExceeded},
	{errkind.Unauthenticated, codes.Unauthenticated},
	{errkind.PermissionDenied, codes.PermissionDenied},
	{errkind.DataLoss, codes.DataLoss},
	{errkind.ResourceExhausted, codes.ResourceExhausted},
	{context.DeadlineExceeded, codes.DeadlineExceeded},
	{context.Canceled, codes.Canceled},
}

// Code returns the gRPC code for err's kind, or codes.Unknown if it has none.
func Code(err error) codes.Code {
	for _, row := range table {
		if errors.Is(err, row.kind) {
			return row.code
		}
	}
	return codes.Unknown
}

// ToStatus converts a domain error into a gRPC status error. Errors that
// already are statuses pass through. Errors of no known kind become Internal
// with a generic message; their detail goes to log, not to the caller.
func ToStatus(log *slog.Logger, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	if st := notLeaderStatus(err); st != nil {
		return st.Err()
	}
	code := Code(err)
	if code == codes.Unknown {
		if log != nil {
			log.Error("internal error", "err", err)
		}
		return status.Error(codes.Internal, "internal error; the controller's log has the details")
	}
	return status.Error(code, message(err))
}

// message is err's text without the trailing ": <kind>" that wrapping with
// %w leaves: the code already says it.
func message(err error) string {
	msg := err.Error()
	for _, row := range table {
		if errors.Is(err, row.kind) {
			if trimmed, ok := strings.CutSuffix(msg, ": "+row.kind.Error()); ok && trimmed != "" {
				return trimmed
			}
		}
	}
	return msg
}

// FromStatus converts a gRPC status error back into an error of the matching
// kind whose message is the server's message. Other errors pass through.
func FromStatus(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	if nl := notLeaderFrom(st); nl != nil {
		return nl
	}
	for _, row := range table {
		if row.code == st.Code() {
			return errkind.New(row.kind, st.Message())
		}
	}
	return errkind.New(errors.New(st.Code().String()), st.Message())
}

// UnaryServerInterceptor converts the errors of unary handlers with ToStatus.
func UnaryServerInterceptor(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		resp, err := handler(ctx, req)
		return resp, ToStatus(log.With("method", info.FullMethod), err)
	}
}

// StreamServerInterceptor converts the errors of streaming handlers with ToStatus.
func StreamServerInterceptor(log *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		return ToStatus(log.With("method", info.FullMethod), handler(srv, ss))
	}
}
