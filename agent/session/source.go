package session

import (
	"context"
	"fmt"

	"github.com/klauspost/compress/zstd"
	"google.golang.org/grpc"

	"github.com/cutover-dev/cutover/agent/stage"
	"github.com/cutover-dev/cutover/pkg/chunkwire"
	"github.com/cutover-dev/cutover/pkg/manifest"
	"github.com/cutover-dev/cutover/pkg/rpcerr"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// Source fetches manifests and chunks from the controller's AgentService; it
// is the stage.Source of a running agent.
type Source struct {
	client      cutoverv1.AgentServiceClient
	zstd        *zstd.Decoder
	environment string
	agent       string
}

var _ stage.Source = (*Source)(nil)

// NewSource returns a Source over conn for the agent named agent of
// environment (both told to the controller for its accounting).
func NewSource(conn grpc.ClientConnInterface, environment, agent string) *Source {
	dec, err := zstd.NewReader(nil, zstd.WithDecoderMaxMemory(4*manifest.MaxChunkSize))
	if err != nil {
		panic(fmt.Sprintf("session: zstd decoder: %v", err)) // only fails on bad options
	}
	return &Source{client: cutoverv1.NewAgentServiceClient(conn), zstd: dec, environment: environment, agent: agent}
}

// GetManifest returns a release's manifest bytes.
func (s *Source) GetManifest(ctx context.Context, releaseID string) ([]byte, error) {
	resp, err := s.client.GetManifest(ctx, &cutoverv1.GetManifestRequest{ReleaseId: releaseID}, grpc.MaxCallRecvMsgSize(manifest.MaxEncodedBytes+64<<10)) // a manifest may be larger than gRPC's default 4 MiB
	if err != nil {
		return nil, rpcerr.FromStatus(err)
	}
	return resp.GetManifest(), nil
}

// FetchChunks streams the chunks ids (telling the controller which of them
// arrived corrupt before, suspect) and hands each batch to fn,
// decompressed, with the function that releases its buffer. The chunks are
// decoded with chunkwire (one copy of the received bytes into a pooled
// buffer, which the batch's data then aliases). A chunk that does not
// decompress is handed on with nil data, so that its hash check fails and
// it is fetched again.
func (s *Source) FetchChunks(ctx context.Context, releaseID string, ids, suspect []manifest.ChunkID, fn func([]stage.Received, func()) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req := &cutoverv1.FetchChunksRequest{ReleaseId: releaseID, Ids: make([][]byte, len(ids)), Environment: s.environment, Agent: s.agent}
	for i := range ids {
		req.Ids[i] = ids[i][:]
	}
	for i := range suspect {
		req.SuspectIds = append(req.SuspectIds, suspect[i][:])
	}
	stream, err := s.client.FetchChunks(ctx, req, grpc.ForceCodecV2(chunkwire.Codec{}))
	if err != nil {
		return rpcerr.FromStatus(err)
	}
	return rpcerr.FromStatus(chunkwire.Receive(stream, func(resp *chunkwire.Decoded) error {
		batch := make([]stage.Received, 0, len(resp.Chunks))
		for _, c := range resp.Chunks {
			data, err := c.Plain(s.zstd)
			if err != nil {
				data = nil // does not decompress: the stage takes it for a corrupt chunk
			}
			batch = append(batch, stage.Received{ID: manifest.ChunkID(c.ID), Data: data, WireBytes: int64(len(c.Data))})
		}
		return fn(batch, resp.Free)
	}))
}
