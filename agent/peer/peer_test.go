package peer

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"slices"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/cutover-dev/cutover/agent/stage"
	"github.com/cutover-dev/cutover/pkg/chunkwire"
	ident "github.com/cutover-dev/cutover/pkg/identity"
	"github.com/cutover-dev/cutover/pkg/identity/identitytest"
	"github.com/cutover-dev/cutover/pkg/manifest"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// testID is an agent identity issued by a test CA.
type testID struct {
	agent ident.Agent
	cert  tls.Certificate
	roots *x509.CertPool
}

func (i *testID) Agent() ident.Agent               { return i.agent }
func (i *testID) TLSCertificate() *tls.Certificate { return &i.cert }
func (i *testID) Roots() *x509.CertPool            { return i.roots }

func newID(t *testing.T, ca *identitytest.Cert, env, name string) *testID {
	c := identitytest.New(t, ca, identitytest.Options{CN: env + "/" + name, URIs: []string{"cutover://" + env + "/agent/" + name},
		EKU: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	return &testID{agent: ident.Agent{Environment: env, Name: name}, cert: c.TLS(), roots: roots}
}

// heldMap is what a peer holds; corrupt ids are served with wrong bytes.
type heldMap struct {
	chunks  map[manifest.ChunkID][]byte
	corrupt map[manifest.ChunkID]bool
}

func (h heldMap) ServeHeld(_ context.Context, ids []manifest.ChunkID, _ func(manifest.ChunkID) bool, fn func(manifest.ChunkID, []byte) error, _ func() error) error {
	for _, id := range ids {
		d, ok := h.chunks[id]
		if !ok {
			continue
		}
		if h.corrupt[id] {
			d = append([]byte("bad"), d...)
		}
		if err := fn(id, d); err != nil {
			return err
		}
	}
	return nil
}

// origin is a controller that has every chunk and records what it is asked.
type origin struct {
	chunks map[manifest.ChunkID][]byte
	mu     sync.Mutex
	asked  []manifest.ChunkID
}

func (o *origin) GetManifest(context.Context, string) ([]byte, error) { return nil, nil }

func (o *origin) FetchChunks(_ context.Context, _ string, ids, _ []manifest.ChunkID, fn func([]stage.Received, func()) error) error {
	o.mu.Lock()
	o.asked = append(o.asked, ids...)
	o.mu.Unlock()
	var b []stage.Received
	for _, id := range ids {
		b = append(b, stage.Received{ID: id, Data: o.chunks[id], WireBytes: int64(len(o.chunks[id]))})
	}
	return fn(b, func() {})
}

// servePeer starts a's peer server over held and returns its address.
func servePeer(t *testing.T, a *testID, held Held) string {
	t.Helper()
	src, err := NewSource(Config{Identity: func() Identity { return a }, Controller: &origin{}})
	if err != nil {
		t.Fatal(err)
	}
	return serveSource(t, src, held)
}

func chunks(n int) (map[manifest.ChunkID][]byte, []manifest.ChunkID) {
	m := map[manifest.ChunkID][]byte{}
	var ids []manifest.ChunkID
	for i := range n {
		d := bytes.Repeat([]byte{byte(i)}, 1000+i)
		id := manifest.HashChunk(d)
		m[id] = d
		ids = append(ids, id)
	}
	return m, ids
}

func TestSourceAsksPeersFirst(t *testing.T) {
	ca := identitytest.NewCA(t, "cutover CA")
	all, ids := chunks(6)
	half := map[manifest.ChunkID][]byte{}
	for _, id := range ids[:3] {
		half[id] = all[id]
	}
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := closed.Addr().String()
	closed.Close()
	for _, tc := range []struct {
		name string
		// peers: each served by a prod agent (peer1, peer2, …) holding held
		held        []heldMap
		dead        bool // a peer that does not answer comes first
		wantOrigin  []manifest.ChunkID
		wantCorrupt float64
		wantFailed  float64
		again       []manifest.ChunkID // what the origin is asked by a second fetch
	}{
		{name: "peer holds all", held: []heldMap{{chunks: all}}, again: nil},
		{name: "peer holds half", held: []heldMap{{chunks: half}}, wantOrigin: ids[3:], again: ids[3:]},
		{name: "two peers", held: []heldMap{{chunks: half}, {chunks: all}}},
		{name: "dead peer first", dead: true, held: []heldMap{{chunks: all}}, wantFailed: 1},
		{name: "corrupt peer dropped", held: []heldMap{{chunks: all, corrupt: map[manifest.ChunkID]bool{ids[2]: true}}},
			wantOrigin: ids[2:], wantCorrupt: 1, again: ids},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var peers []Peer
			if tc.dead {
				peers = append(peers, Peer{Name: "dead", Address: deadAddr})
			}
			for i, h := range tc.held {
				name := "peer" + string(rune('1'+i))
				peers = append(peers, Peer{Name: name, Address: servePeer(t, newID(t, ca, "prod", name), h)})
			}
			o := &origin{chunks: all}
			self := newID(t, ca, "prod", "me")
			reg := prometheus.NewRegistry()
			src, err := NewSource(Config{Identity: func() Identity { return self }, Controller: o, Registerer: reg})
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			src.Use("d1", []string{"r1"}, peers, nil)
			fetch := func() {
				var got []manifest.ChunkID
				err := src.FetchChunks(context.Background(), "r1", ids, nil, func(b []stage.Received, release func()) error {
					defer release()
					for _, c := range b {
						if !bytes.Equal(c.Data, all[c.ID]) {
							t.Errorf("chunk %s: wrong content handed on", c.ID)
						}
						got = append(got, c.ID)
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				slices.SortFunc(got, func(a, b manifest.ChunkID) int { return bytes.Compare(a[:], b[:]) })
				want := slices.Clone(ids)
				slices.SortFunc(want, func(a, b manifest.ChunkID) int { return bytes.Compare(a[:], b[:]) })
				if !slices.Equal(got, want) {
					t.Fatalf("got %d chunks, want each of %d once", len(got), len(want))
				}
			}
			fetch()
			if !slices.Equal(o.asked, tc.wantOrigin) {
				t.Errorf("the controller was asked for %d chunks, want %d", len(o.asked), len(tc.wantOrigin))
			}
			if got := counter(src.metrics.corrupt); got != tc.wantCorrupt {
				t.Errorf("corrupt = %v, want %v", got, tc.wantCorrupt)
			}
			if got := counter(src.metrics.failures); got != tc.wantFailed {
				t.Errorf("failures = %v, want %v", got, tc.wantFailed)
			}
			if tc.again != nil || tc.wantCorrupt > 0 {
				o.asked = nil
				fetch()
				if !slices.Equal(o.asked, tc.again) {
					t.Errorf("second fetch: the controller was asked for %d chunks, want %d", len(o.asked), len(tc.again))
				}
			}
		})
	}
}

// TestServerRefusesOtherEnvironments: an agent of another environment,
// or a certificate of another CA, gets nothing.
func TestServerRefusesOtherEnvironments(t *testing.T) {
	ca := identitytest.NewCA(t, "cutover CA")
	other := identitytest.NewCA(t, "other CA")
	all, ids := chunks(2)
	addr := servePeer(t, newID(t, ca, "prod", "server"), heldMap{chunks: all})
	for _, tc := range []struct {
		name   string
		client *testID
		want   codes.Code
	}{
		{name: "same environment", client: newID(t, ca, "prod", "fe2"), want: codes.OK},
		{name: "other environment", client: newID(t, ca, "staging", "fe1"), want: codes.PermissionDenied},
		{name: "other CA", client: newID(t, other, "prod", "fe3"), want: codes.Unavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The client trusts any server: this tests the server's check.
			creds := credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true, Certificates: []tls.Certificate{tc.client.cert}})
			conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			stream, err := cutoverv1.NewPeerServiceClient(conn).FetchChunks(context.Background(),
				&cutoverv1.FetchChunksRequest{Ids: [][]byte{ids[0][:], ids[1][:]}}, grpc.ForceCodecV2(chunkwire.Codec{}))
			n := 0
			if err == nil {
				err = chunkwire.Receive(stream, func(d *chunkwire.Decoded) error {
					n += len(d.Chunks)
					d.Free()
					return nil
				})
			}
			if got := status.Code(err); got != tc.want {
				t.Fatalf("code %v (%v), want %v", got, err, tc.want)
			}
			if tc.want == codes.OK && n != 2 {
				t.Errorf("got %d chunks, want 2", n)
			}
		})
	}
}

// TestClientRefusesWrongServer: the client talks only to the agent of its
// environment that the controller named.
func TestClientRefusesWrongServer(t *testing.T) {
	ca := identitytest.NewCA(t, "cutover CA")
	all, ids := chunks(1)
	stranger := servePeer(t, newID(t, ca, "staging", "fe1"), heldMap{chunks: all})
	impostor := servePeer(t, newID(t, ca, "prod", "fe9"), heldMap{chunks: all})
	self := newID(t, ca, "prod", "me")
	o := &origin{chunks: all}
	src, err := NewSource(Config{Identity: func() Identity { return self }, Controller: o})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	src.Use("d1", []string{"r1"}, []Peer{{Name: "fe1", Address: stranger}, {Name: "fe2", Address: impostor}}, nil)
	err = src.FetchChunks(context.Background(), "r1", ids, nil, func(_ []stage.Received, release func()) error {
		release()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(o.asked) != 1 || counter(src.metrics.failures) != 2 {
		t.Errorf("controller asked for %d chunks, %v peer failures; want 1 and 2 (both peers refused)", len(o.asked), counter(src.metrics.failures))
	}
}

// counter reads a counter's value.
func counter(c prometheus.Counter) float64 {
	var m dto.Metric
	_ = c.Write(&m)
	return m.GetCounter().GetValue()
}
