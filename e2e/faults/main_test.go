package faults

import (
	"flag"
	"os"
	"testing"

	"github.com/cutover-dev/cutover/internal/localcluster"
)

// The flags of a run: go test ./e2e/faults -args -seed N -runs M.
var (
	seedFlag = flag.Uint64("seed", 1, "seed of the first run; run i uses seed+i")
	runsFlag = flag.Int("runs", 3, "how many runs, each with its own cluster and plan")
	// The short default leaves out hang-agent only for time: each holds
	// an agent stopped for a minute (stage 2 ends at the environment's
	// step deadline); `make test-faults` uses -kinds all.
	kindsFlag  = flag.String("kinds", "kill-controller,kill-agent,stop-controller,stop-agent,cut-network,slow-network,disk-full", "fault kinds to draw from, comma-separated, or all")
	stepsFlag  = flag.Int("deployments", 2, "most deployments per run")
	faultsFlag = flag.Int("faults", 4, "most faults per run (at least 2)")
)

// binDir holds the binaries TestMain built.
var binDir string

// binaries are the commands the runs start.
var binaries = []string{"cutover-controller", "cutover-agent"}

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(localcluster.RunTests(m, "e2e/faults", binaries, func(dir string) { binDir = dir }))
}
