package transfer

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/pkg/errkind"
	"github.com/cutover-dev/cutover/pkg/manifest"
)

func TestSendChecksSuspects(t *testing.T) {
	s, chunks, _ := setup(t, 3, 1024, Config{})
	good := chunks[0].ID
	bad := manifest.HashChunk([]byte("what the id says"))
	if err := s.cfg.Store.Update(func(tx model.Tx) error { return tx.PutChunk(bad, []byte("rotten bytes")) }); err != nil {
		t.Fatal(err)
	}
	// The corrupt copy was sent once while another Send runs (simulated),
	// so it stays in the cache.
	s.mu.Lock()
	s.active++
	s.mu.Unlock()
	defer s.done()
	if err := s.Send(context.Background(), "prod", []manifest.ChunkID{bad, good}, nil, func([]Chunk) error { return nil }); err != nil {
		t.Fatal(err)
	}

	s.mu.Lock()
	_, cached := s.cache[bad]
	s.mu.Unlock()
	if !cached {
		t.Fatal("the test needs the corrupt chunk in the cache")
	}
	if err := s.checkSuspects([]manifest.ChunkID{good, {7}}); err != nil {
		t.Fatalf("checkSuspects(an intact chunk, an unknown one) = %v, want nil", err)
	}
	sent := 0
	err := s.Send(context.Background(), "prod", []manifest.ChunkID{good, bad}, []manifest.ChunkID{good, bad}, func(b []Chunk) error {
		sent += len(b)
		return nil
	})
	if !errors.Is(err, errkind.DataLoss) || !strings.Contains(err.Error(), bad.String()) || strings.Contains(err.Error(), good.String()) {
		t.Fatalf("Send with suspects = %v, want DataLoss naming only %s", err, bad)
	}
	if sent != 0 {
		t.Errorf("%d chunks were sent before the suspects were checked", sent)
	}
	_ = s.cfg.Store.View(func(tx model.Tx) error {
		if tx.HasChunk(bad) {
			t.Error("the corrupt chunk is still stored")
		}
		if !tx.HasChunk(good) {
			t.Error("the intact chunk was deleted")
		}
		return nil
	})
	if got := value(s.metrics.corrupt); got != 1 {
		t.Errorf("cutover_transfer_corrupt_chunks_total = %v, want 1", got)
	}
	s.mu.Lock()
	_, cached = s.cache[bad]
	s.mu.Unlock()
	if cached {
		t.Error("the corrupt chunk is still in the cache")
	}
	// Nothing serves it any more.
	err = s.Send(context.Background(), "prod", []manifest.ChunkID{bad}, nil, func([]Chunk) error { return nil })
	if !errors.Is(err, errkind.NotFound) {
		t.Errorf("Send of the deleted chunk = %v, want NotFound", err)
	}
}
