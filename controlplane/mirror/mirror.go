// Package mirror keeps a follower controller's copy of the release chunks
// (controller.db) up to date with the leader's, so that a leader that dies
// leaves its successor able to serve every recorded release: to finish a
// prepare it cut short, to stage a front-end that joined late, to arm
// again. The records (releases, manifests) are in etcd already; only the
// chunks live on each controller.
//
// A follower looks at the recorded releases every Every and fetches the
// chunks it lacks from the leader with the agents' pull-missing transfer
// (AgentService.FetchChunks), presenting its controller certificate; each
// chunk is verified by its hash before it is stored. Each release held
// whole is recorded (Config.Held): the leader says a deployment PREPARED
// only once every live controller holds its releases
// (controlplane/copies, docs/architecture.md, "Release data").
package mirror

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"time"

	"github.com/klauspost/compress/zstd"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/pkg/chunkwire"
	"github.com/cutover-dev/cutover/pkg/manifest"
	"github.com/cutover-dev/cutover/pkg/rpcerr"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// DefaultEvery is the default of Config.Every.
const DefaultEvery = 2 * time.Second

// batchIDs bounds the ids of one FetchChunks request.
const batchIDs = 1024

// Chunks is the local chunk store: controlplane/store's bbolt file.
type Chunks interface {
	View(fn func(model.Tx) error) error
	PutChunks(chunks []manifest.Chunk) error
}

// Config configures a Mirror.
type Config struct {
	// Records is the shared store (etcd): releases and manifests.
	Records model.Store
	// Chunks is this controller's chunk store.
	Chunks Chunks
	// Leader says where the leader is and whether this controller is it
	// (a leader mirrors nothing).
	Leader func() (addr string, self bool)
	// TLS is the client configuration towards the leader: this
	// controller's certificate, and the check that the peer is a
	// controller of the same CA.
	TLS *tls.Config
	// Held records the releases this controller holds whole; nil: not
	// recorded.
	Held  Held
	Every time.Duration
	Log   *slog.Logger
}

// Held records which releases a controller holds (*copies.Copies).
type Held interface {
	// Reset forgets every release recorded before: it runs before the
	// first round.
	Reset(ctx context.Context) error
	// Hold records a release held whole.
	Hold(ctx context.Context, release string) error
}

// Mirror copies the leader's release chunks to this controller.
type Mirror struct {
	cfg   Config
	zstd  *zstd.Decoder
	done  map[string]bool // releases held whole and recorded, by id
	reset bool            // Held.Reset ran
}

// New returns a Mirror; Run mirrors.
func New(cfg Config) (*Mirror, error) {
	if cfg.Every <= 0 {
		cfg.Every = DefaultEvery
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderMaxMemory(4*manifest.MaxChunkSize))
	if err != nil {
		return nil, err
	}
	return &Mirror{cfg: cfg, zstd: dec, done: map[string]bool{}}, nil
}

// Run mirrors every Every until ctx ends; a failed round is logged and
// tried again at the next.
func (m *Mirror) Run(ctx context.Context) error {
	defer m.zstd.Close()
	t := time.NewTicker(m.cfg.Every)
	defer t.Stop()
	var conn *grpc.ClientConn
	var connAddr string
	defer func() {
		if conn != nil {
			_ = conn.Close()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		addr, self := m.cfg.Leader()
		if self || addr == "" {
			continue
		}
		if !m.reset && m.cfg.Held != nil {
			if err := m.cfg.Held.Reset(ctx); err != nil {
				m.cfg.Log.Warn("mirror: forget the releases recorded before", "error", err)
				continue
			}
		}
		m.reset = true
		if conn == nil || connAddr != addr {
			if conn != nil {
				_ = conn.Close()
			}
			var err error
			if conn, err = grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(m.cfg.TLS))); err != nil {
				m.cfg.Log.Warn("mirror: connect to the leader", "leader", addr, "error", err)
				conn = nil
				continue
			}
			connAddr = addr
		}
		if err := m.Round(ctx, cutoverv1.NewAgentServiceClient(conn)); err != nil && ctx.Err() == nil {
			m.cfg.Log.Warn("mirror: a round failed; the next one tries again", "leader", addr, "error", err)
		}
	}
}

// Round fetches, through client, the chunks of every recorded release
// that this controller lacks.
func (m *Mirror) Round(ctx context.Context, client cutoverv1.AgentServiceClient) error {
	type release struct {
		id  string
		ids []manifest.ChunkID
	}
	var releases []release
	err := m.cfg.Records.View(func(tx model.Tx) error {
		apps, err := tx.Applications()
		if err != nil {
			return err
		}
		for _, a := range apps {
			rs, err := tx.ReleasesOf(a.Name)
			if err != nil {
				return err
			}
			for _, r := range rs {
				if m.done[r.ID] {
					continue
				}
				b, err := tx.Manifest(r.ID)
				if err != nil {
					return err
				}
				man, err := manifest.Decode(b)
				if err != nil {
					return fmt.Errorf("release %s: %w", r.ID, err)
				}
				releases = append(releases, release{r.ID, man.ChunkIDs()})
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, r := range releases {
		missing, err := m.missing(r.ids)
		if err != nil {
			return err
		}
		for len(missing) > 0 {
			n := min(len(missing), batchIDs)
			if err := m.fetch(ctx, client, r.id, missing[:n]); err != nil {
				return fmt.Errorf("release %s: %w", r.id, err)
			}
			missing = missing[n:]
		}
		if m.cfg.Held != nil {
			if err := m.cfg.Held.Hold(ctx, r.id); err != nil {
				return err
			}
		}
		m.done[r.id] = true
		m.cfg.Log.Info("release mirrored from the leader", "release", r.id, "chunks", len(r.ids))
	}
	return nil
}

// missing returns the ids among ids that the chunk store lacks.
func (m *Mirror) missing(ids []manifest.ChunkID) ([]manifest.ChunkID, error) {
	var out []manifest.ChunkID
	err := m.cfg.Chunks.View(func(tx model.Tx) error {
		seen := map[manifest.ChunkID]bool{}
		for _, id := range ids {
			if !seen[id] && !tx.HasChunk(id) {
				out = append(out, id)
			}
			seen[id] = true
		}
		return nil
	})
	return out, err
}

// fetch streams ids of release from the leader and stores each chunk
// whose content hashes to its id.
func (m *Mirror) fetch(ctx context.Context, client cutoverv1.AgentServiceClient, release string, ids []manifest.ChunkID) error {
	req := &cutoverv1.FetchChunksRequest{ReleaseId: release, Ids: make([][]byte, len(ids))}
	for i := range ids {
		req.Ids[i] = ids[i][:]
	}
	stream, err := client.FetchChunks(ctx, req, grpc.ForceCodecV2(chunkwire.Codec{}))
	if err != nil {
		return rpcerr.FromStatus(err)
	}
	return rpcerr.FromStatus(chunkwire.Receive(stream, func(resp *chunkwire.Decoded) error {
		defer resp.Free() // after PutChunks: uncompressed data aliases the response
		batch := make([]manifest.Chunk, 0, len(resp.Chunks))
		for _, c := range resp.Chunks {
			id := manifest.ChunkID(c.ID)
			data, err := c.Plain(m.zstd)
			if err != nil {
				return fmt.Errorf("chunk %s from the leader does not decompress: %w", id, err)
			}
			if manifest.HashChunk(data) != id {
				return fmt.Errorf("chunk %s from the leader does not hash to its id; nothing of it was kept", id)
			}
			batch = append(batch, manifest.Chunk{ID: id, Data: data})
		}
		return m.cfg.Chunks.PutChunks(batch)
	}))
}
