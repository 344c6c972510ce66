// Package storecodec turns the controller's records (controlplane/model)
// into the bytes the stores keep, protobuf messages of
// proto/cutover/storage/v1, and back. The functions are pure: every store
// (bbolt in controlplane/store, etcd) encodes the same way, so that a
// record reads the same wherever it was written.
//
// A deployment is encoded in parts: EncodeDeployment keeps everything but
// its agents, and each agent's progress is a record of its own
// (EncodeDeploymentAgent), so that a store can rewrite one agent's record
// when one agent reports instead of the whole fleet's. Encode and Decode
// take any record stored as one value, for a store that handles records
// generically.
//
// Times are kept to the nanosecond and read back in UTC; Go's zero time is
// an absent field and reads back as the zero time. Empty slices and maps
// read back as nil. Encoding is deterministic (maps sorted), so that a
// store may compare the bytes of a record with what it holds to skip a
// write that changes nothing. Decode errors wrap errkind.DataLoss; encode
// errors (a state that storage/v1 does not know) wrap errkind.InvalidArgument.
package storecodec

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cutover-dev/cutover/pkg/errkind"
)

var marshal = proto.MarshalOptions{Deterministic: true}

// encode marshals a message built by to from v.
func encode[V any, M proto.Message](v *V, to func(*V) (M, error)) ([]byte, error) {
	m, err := to(v)
	if err != nil {
		return nil, err
	}
	return marshal.Marshal(m)
}

// decode unmarshals b into a new M and converts it with from.
func decode[V any, M proto.Message](b []byte, what string, newM func() M, from func(M) (*V, error)) (*V, error) {
	m := newM()
	if err := proto.Unmarshal(b, m); err != nil {
		return nil, fmt.Errorf("decode %s: %w: %v", what, errkind.DataLoss, err)
	}
	v, err := from(m)
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", what, err)
	}
	return v, nil
}

// ts is t as a Timestamp; nil for the zero time.
func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

// tm is p as a time in UTC; the zero time for nil.
func tm(p *timestamppb.Timestamp) time.Time {
	if p == nil {
		return time.Time{}
	}
	return p.AsTime()
}

func ns(d time.Duration) int64 { return int64(d) }

func dur(n int64) time.Duration { return time.Duration(n) }

// each converts every element of in with f; nil when in is empty.
func each[A, B any](in []A, f func(*A) B) []B {
	if len(in) == 0 {
		return nil
	}
	out := make([]B, len(in))
	for i := range in {
		out[i] = f(&in[i])
	}
	return out
}

// eachP is each for a slice of pointers (protobuf's repeated messages).
func eachP[A, B any](in []*A, f func(*A) B) []B {
	if len(in) == 0 {
		return nil
	}
	out := make([]B, len(in))
	for i, a := range in {
		out[i] = f(a)
	}
	return out
}

// strs returns nil for an empty slice, else s.
func strs(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}
