package faults

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
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
	if testing.Short() {
		fmt.Println("e2e/faults: skipped with -short")
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "cutover-faults-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e/faults:", err)
		os.Exit(1)
	}
	code := func() int {
		defer os.RemoveAll(dir)
		if err := buildBinaries(dir); err != nil {
			fmt.Fprintln(os.Stderr, "e2e/faults:", err)
			return 1
		}
		binDir = dir
		return m.Run()
	}()
	os.Exit(code)
}

// buildBinaries builds binaries into dir with -race (without, when
// CUTOVER_E2E_RACE=0), as e2e's TestMain does.
func buildBinaries(dir string) error {
	args := []string{"build", "-race", "-o", dir + string(filepath.Separator)}
	if os.Getenv("CUTOVER_E2E_RACE") == "0" {
		args = slices.Delete(args, 1, 2)
	}
	for _, b := range binaries {
		args = append(args, "github.com/cutover-dev/cutover/cmd/"+b)
	}
	cmd := exec.Command("go", args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go %v: %w", args, err)
	}
	return nil
}
