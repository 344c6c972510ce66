package fleetbench

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/cutover-dev/cutover/agent/peer"
	"github.com/cutover-dev/cutover/pkg/manifest"
)

// errKilled is what a killed peer's fetches end with.
var errKilled = errors.New("fleetbench: this peer was killed")

// faultyHeld is what a faulty peer serves from: the agent's own chunks
// until it handed on `after` bytes, then nothing (Killed: each fetch
// fails at its next chunk, mid-stream) or wrong bytes (Corrupting).
type faultyHeld struct {
	peer.Held
	fault Fault
	after int64
	// handed counts the bytes handed on; good those handed intact.
	handed, good atomic.Int64
}

func (h *faultyHeld) ServeHeld(ctx context.Context, ids []manifest.ChunkID, wait func(manifest.ChunkID) bool, fn func(manifest.ChunkID, []byte) error, idle func() error) error {
	return h.Held.ServeHeld(ctx, ids, wait, func(id manifest.ChunkID, data []byte) error {
		if h.handed.Load() >= h.after {
			switch h.fault {
			case Killed:
				return errKilled
			case Corrupting:
				bad := append([]byte(nil), data...)
				bad[len(bad)/2] ^= 0xff
				h.handed.Add(int64(len(data)))
				return fn(id, bad)
			}
		}
		h.handed.Add(int64(len(data)))
		h.good.Add(int64(len(data)))
		return fn(id, data)
	}, idle)
}
