package controlplane

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/cutover-dev/cutover/controlplane/transfer"
	"github.com/cutover-dev/cutover/pkg/chunkwire"
	"github.com/cutover-dev/cutover/pkg/manifest"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// TestMaxEgressHolds runs a real controller capped at 4 MiB/s
// (Config.MaxEgress, --max-egress), prepares a 4 MiB release of random
// (incompressible) data to one agent, then has three agent connections
// fetch the whole release at once over loopback TLS, and measures the
// chunk bytes they receive against time: from the requests to the last
// byte, at most cap × time + one batch; over any window of a second or
// more, at most cap × window + two batches (one for the burst, one for
// the jitter of the receivers' clocks). Uncapped, loopback carries the
// 12 MiB many times faster than 4 MiB/s.
func TestMaxEgressHolds(t *testing.T) {
	const (
		rate    = 4 << 20
		size    = 4 << 20
		clients = 3
		batch   = transfer.DefaultBatchBytes
	)
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := writeRandomApp(src, "egress", size); err != nil {
		t.Fatal(err)
	}
	tc := startControllerWith(t, filepath.Join(dir, "data"), func(cfg *Config) {
		cfg.MaxEgress, cfg.SourceRoots = rate, []string{src}
	})
	c := ctx(t)
	if _, err := tc.admin.CreateEnvironment(c, &cutoverv1.CreateEnvironmentRequest{Environment: &cutoverv1.Environment{Name: "capped", TwoStage: true}}); err != nil {
		t.Fatal(err)
	}
	agentTLS, err := tc.enrollAgent(c, "capped", "a1")
	if err != nil {
		t.Fatal(err)
	}
	conns := make([]*grpc.ClientConn, clients)
	for i := range conns {
		if conns[i], err = dialAgent(tc.addr, credentials.NewTLS(agentTLS)); err != nil {
			t.Fatal(err)
		}
		defer conns[i].Close()
	}
	sessCtx, stopSession := context.WithCancel(context.Background())
	defer stopSession()
	go stageOnly(sessCtx, conns[0], "capped", "a1")
	waitAgents(t, tc, "capped", 1)
	if _, err := tc.admin.RegisterApplication(c, &cutoverv1.RegisterApplicationRequest{Application: &cutoverv1.Application{SourceDir: src}}); err != nil {
		t.Fatal(err)
	}
	d, err := tc.admin.CreateDeployment(c, &cutoverv1.CreateDeploymentRequest{Environment: "capped",
		Applications: []*cutoverv1.ApplicationVersion{{Name: "egress", VersionLabel: "v1"}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tc.admin.PrepareDeployment(c, &cutoverv1.PrepareDeploymentRequest{Id: d.GetId()}); err != nil {
		t.Fatal(err)
	}
	d = waitFor(t, tc, d.GetId(), "PREPARED", inState(cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED))
	release := d.GetApplications()[0].GetReleaseId()
	mr, err := cutoverv1.NewAgentServiceClient(conns[0]).GetManifest(c, &cutoverv1.GetManifestRequest{ReleaseId: release})
	if err != nil {
		t.Fatal(err)
	}
	m, err := manifest.Decode(mr.GetManifest())
	if err != nil {
		t.Fatal(err)
	}
	var ids [][]byte
	for _, id := range m.ChunkIDs() {
		ids = append(ids, id[:])
	}

	var rec receipts
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, clients)
	for i, conn := range conns {
		wg.Go(func() {
			errs[i] = fetchCounted(c, conn, &cutoverv1.FetchChunksRequest{ReleaseId: release, Ids: ids, Environment: "capped", Agent: "a1"}, &rec)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}

	total, elapsed := rec.total(), rec.last().Sub(start)
	t.Logf("%d clients received %d bytes in %v: %.2f MiB/s under a cap of %d MiB/s", clients, total, elapsed.Round(time.Millisecond),
		float64(total)/elapsed.Seconds()/(1<<20), rate>>20)
	if want := int64(clients) * m.Size(); total != want {
		t.Fatalf("received %d chunk bytes, want %d (the release %d times)", total, want, clients)
	}
	if limit := rate*elapsed.Seconds() + batch; float64(total) > limit {
		t.Errorf("received %d bytes in %v: more than cap × time + one batch = %.0f", total, elapsed, limit)
	}
	if w, got, limit := rec.worstWindow(time.Second, rate, 2*batch); float64(got) > limit {
		t.Errorf("received %d bytes in a window of %v: more than cap × window + two batches = %.0f", got, w, limit)
	}
}

// receipts records, across concurrent fetches, when how many chunk bytes
// arrived.
type receipts struct {
	mu    sync.Mutex
	at    []time.Time
	bytes []int64 // cumulative
}

func (r *receipts) add(n int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	prev := int64(0)
	if len(r.bytes) > 0 {
		prev = r.bytes[len(r.bytes)-1]
	}
	r.at, r.bytes = append(r.at, time.Now()), append(r.bytes, prev+n)
}

func (r *receipts) total() int64 {
	if len(r.bytes) == 0 {
		return 0
	}
	return r.bytes[len(r.bytes)-1]
}

func (r *receipts) last() time.Time { return r.at[len(r.at)-1] }

// worstWindow looks at every window between two receipts at least minWindow
// apart (the bytes of the receipts after the first, up to and including
// the last) and returns the one whose bytes most exceed rate × window +
// slack: its length, its bytes and that limit.
func (r *receipts) worstWindow(minWindow time.Duration, rate, slack float64) (time.Duration, int64, float64) {
	var worst time.Duration
	var worstBytes int64
	worstLimit, worstOver := 0.0, -1e18
	for i := range r.at {
		for j := i + 1; j < len(r.at); j++ {
			w := r.at[j].Sub(r.at[i])
			if w < minWindow {
				continue
			}
			got := r.bytes[j] - r.bytes[i]
			limit := rate*w.Seconds() + slack
			if over := float64(got) - limit; over > worstOver {
				worst, worstBytes, worstLimit, worstOver = w, got, limit, over
			}
		}
	}
	return worst, worstBytes, worstLimit
}

// fetchCounted fetches req's chunks over conn as the agent does (chunkwire),
// verifies each and records its bytes in rec as it arrives.
func fetchCounted(ctx context.Context, conn *grpc.ClientConn, req *cutoverv1.FetchChunksRequest, rec *receipts) error {
	stream, err := cutoverv1.NewAgentServiceClient(conn).FetchChunks(ctx, req, grpc.ForceCodecV2(chunkwire.Codec{}))
	if err != nil {
		return err
	}
	for {
		var resp chunkwire.Decoded
		err := stream.RecvMsg(&resp)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		var n int64
		for _, ch := range resp.Chunks {
			if ch.Compressed || manifest.HashChunk(ch.Data) != ch.ID {
				resp.Free()
				return fmt.Errorf("chunk %x: compressed or not matching its hash", ch.ID)
			}
			n += int64(len(ch.Data))
		}
		resp.Free()
		rec.add(n)
	}
}
