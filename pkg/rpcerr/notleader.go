package rpcerr

import (
	"errors"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cutover-dev/cutover/pkg/errkind"
)

// The ErrorInfo of a NotLeader status (AIP-193).
const (
	errorDomain     = "cutover.dev"
	reasonNotLeader = "NOT_LEADER"
	metadataLeader  = "leader"
)

// notLeaderStatus is the status of an errkind.NotLeader (nil if err is
// not one): Unavailable, with the leader's address in an ErrorInfo.
func notLeaderStatus(err error) *status.Status {
	var nl *errkind.NotLeader
	if !errors.As(err, &nl) {
		return nil
	}
	st := status.New(codes.Unavailable, nl.Error())
	info := &errdetails.ErrorInfo{Reason: reasonNotLeader, Domain: errorDomain}
	if nl.Leader != "" {
		info.Metadata = map[string]string{metadataLeader: nl.Leader}
	}
	if withInfo, err := st.WithDetails(info); err == nil {
		return withInfo
	}
	return st
}

// notLeaderFrom is the errkind.NotLeader a status carries, or nil.
func notLeaderFrom(st *status.Status) *errkind.NotLeader {
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == errorDomain && info.GetReason() == reasonNotLeader {
			return &errkind.NotLeader{Leader: info.GetMetadata()[metadataLeader]}
		}
	}
	return nil
}
