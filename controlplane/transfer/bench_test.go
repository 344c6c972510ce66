package transfer

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/pkg/manifest"
)

// BenchmarkSend256MiB sends 256 MiB of random (incompressible) 64 KiB
// chunks from a real store, as one agent's FetchChunks would, to a send
// func that discards the batches ("discard": the cost of reading and
// preparing the chunks alone), writes them to a loopback TCP connection
// ("tcp": both ends on the same 2 CPUs), or hands them to a modelled wire of
// 1 GiB/s ("wire": send returns when a link of that bandwidth would have
// taken the batch, without using a CPU meanwhile, as a gRPC send waiting
// for flow control from a remote agent; a model, not a synchronisation).
//
//	go test -run '^$' -bench Send256MiB -benchtime 5x ./controlplane/transfer
func BenchmarkSend256MiB(b *testing.B) {
	const size = 64 << 10
	s, chunks, _ := setup(b, 256<<20/size, size, Config{})
	all := ids(chunks)
	b.Run("discard", func(b *testing.B) {
		benchmarkSend(b, s, all, func([]Chunk) error { return nil })
	})
	b.Run("tcp", func(b *testing.B) {
		conn := loopback(b)
		benchmarkSend(b, s, all, func(batch []Chunk) error {
			for _, c := range batch {
				if _, err := conn.Write(c.Data); err != nil {
					return err
				}
			}
			return nil
		})
	})
	b.Run("wire", func(b *testing.B) {
		const bandwidth = 1 << 30 // bytes per second
		var free time.Time        // when the modelled link is free again
		benchmarkSend(b, s, all, func(batch []Chunk) error {
			n := 0
			for _, c := range batch {
				n += len(c.Data)
			}
			free = later(free, time.Now()).Add(time.Duration(n) * time.Second / bandwidth)
			time.Sleep(time.Until(free))
			return nil
		})
	})
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func benchmarkSend(b *testing.B, s *Sender, all []manifest.ChunkID, send func([]Chunk) error) {
	b.SetBytes(int64(len(all)) * 64 << 10)
	for b.Loop() {
		if err := s.Send(context.Background(), "prod", all, nil, send); err != nil {
			b.Fatal(err)
		}
	}
}

// loopback returns the writing end of a TCP connection on 127.0.0.1 whose
// other end is read and discarded until the benchmark ends.
func loopback(b *testing.B) net.Conn {
	b.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
		_, _ = io.Copy(io.Discard, c)
	}()
	conn, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	server, ok := <-accepted
	if !ok {
		b.Fatal("accept failed")
	}
	b.Cleanup(func() { conn.Close(); server.Close() })
	return conn
}
