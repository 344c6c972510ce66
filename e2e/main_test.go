package e2e

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
)

// binDir holds the binaries TestMain built.
var binDir string

// binaries are the commands the tests start, by package directory under cmd/.
var binaries = []string{"cutover-controller", "cutover-agent", "cutoverctl", "cutover-demo"}

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		fmt.Println("e2e: skipped with -short")
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "cutover-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	code := func() int {
		defer os.RemoveAll(dir)
		if err := buildBinaries(dir); err != nil {
			fmt.Fprintln(os.Stderr, "e2e:", err)
			return 1
		}
		binDir = dir
		return m.Run()
	}()
	os.Exit(code)
}

// buildBinaries builds every command of binaries into dir with -race
// (without, when CUTOVER_E2E_RACE=0: for measurements such as TestSwapSpread).
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

// bin returns the path of a built binary.
func bin(name string) string { return filepath.Join(binDir, name) }
