package storecodec

import (
	"fmt"
	"reflect"

	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/pkg/errkind"
)

// codec is the pair of typed functions of one record type, behind any.
type codec struct {
	typ reflect.Type // a pointer to the record type
	enc func(v any) ([]byte, error)
	dec func(data []byte, v any) error
}

func codecOf[V any](enc func(*V) ([]byte, error), dec func([]byte) (*V, error)) codec {
	return codec{
		typ: reflect.TypeFor[*V](),
		enc: func(v any) ([]byte, error) { return enc(v.(*V)) },
		dec: func(data []byte, v any) error {
			r, err := dec(data)
			if err == nil {
				*v.(*V) = *r
			}
			return err
		},
	}
}

// codecs are the records stored as one value.
var codecs = []codec{
	codecOf(EncodeEnvironment, DecodeEnvironment),
	codecOf(EncodeApplication, DecodeApplication),
	codecOf(EncodeRelease, DecodeRelease),
	codecOf(EncodeAgent, DecodeAgent),
	codecOf(EncodeOperatorToken, DecodeOperatorToken),
	codecOf(EncodeJoinToken, DecodeJoinToken),
	codecOf(EncodeEnrollment, DecodeEnrollment),
	codecOf(EncodeAuditRecord, DecodeAuditRecord),
	codecOf(EncodeDeploymentAgent, DecodeDeploymentAgent),
}

func codecFor(v any) (codec, error) {
	t := reflect.TypeOf(v)
	for _, c := range codecs {
		if c.typ == t && reflect.ValueOf(v).Pointer() != 0 {
			return c, nil
		}
	}
	if _, ok := v.(*model.Deployment); ok {
		return codec{}, fmt.Errorf("a deployment is stored in parts: use EncodeDeployment/DecodeDeployment and one DeploymentAgent record per agent: %w", errkind.InvalidArgument)
	}
	return codec{}, fmt.Errorf("%T is not a stored record (or is nil): %w", v, errkind.InvalidArgument)
}

// Encode encodes a record of controlplane/model that is stored as one
// value, given as a pointer: an environment, application, release, agent,
// operator token, join token, enrollment, audit record, or one agent's
// progress in a deployment. A *model.Deployment is refused
// (InvalidArgument): it is stored in parts, with EncodeDeployment and
// EncodeDeploymentAgent.
func Encode(v any) ([]byte, error) {
	c, err := codecFor(v)
	if err != nil {
		return nil, err
	}
	return c.enc(v)
}

// Decode decodes data into the record v points to, one of the types that
// Encode takes.
func Decode(data []byte, v any) error {
	c, err := codecFor(v)
	if err != nil {
		return err
	}
	return c.dec(data, v)
}
