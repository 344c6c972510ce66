// Command cutover-bench measures release transfer with the real controller
// and agents on loopback, on seeded random data, and prints issue 3's table
// (see e2e/bench). It only reads flags.
//
//	make bench                                     # 1 GiB, 10 agents
//	go run ./cmd/cutover-bench -bin bin -size 128MiB   # a quick run
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/cutover-dev/cutover/e2e/bench"
)

func main() {
	binDir := flag.String("bin", "bin", "directory with cutover-controller and cutover-agent (make build)")
	size := flag.String("size", "1GiB", "release size (e.g. 1GiB, 128MiB)")
	agents := flag.Int("agents", 10, "agents that stage at once for the many-agents figure")
	seed := flag.Uint64("seed", 1, "seed of the generated data")
	dir := flag.String("dir", "", "work directory (default: a new temporary directory, removed at the end)")
	flag.Parse()
	os.Exit(run(*binDir, *size, *agents, *seed, *dir))
}

func run(binDir, sizeFlag string, agents int, seed uint64, dir string) int {
	size, err := bench.ParseSize(sizeFlag)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cutover-bench: -size:", err)
		return 2
	}
	if binDir, err = filepath.Abs(binDir); err != nil {
		fmt.Fprintln(os.Stderr, "cutover-bench:", err)
		return 2
	}
	if dir == "" {
		if dir, err = os.MkdirTemp("", "cutover-bench-"); err != nil {
			fmt.Fprintln(os.Stderr, "cutover-bench:", err)
			return 1
		}
		defer os.RemoveAll(dir)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := bench.Run(ctx, bench.Config{BinDir: binDir, Dir: dir, Size: size, Agents: agents, Seed: seed, Log: os.Stderr})
	if err != nil {
		fmt.Fprintln(os.Stderr, "cutover-bench:", err)
		return 1
	}
	fmt.Println(res.Table())
	fmt.Print(res.Context())
	if !res.OK() {
		return 1
	}
	return 0
}
