package localcluster

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// RunTests is the TestMain of a package of tests that start the real
// binaries: unless -short, it builds the commands names (directories under
// cmd/, or, when a name holds a slash, a directory of the module such as
// examples/listen: a test app) into a temporary directory, with -race (without when
// CUTOVER_E2E_RACE=0: for measurements), calls setBinDir with it, runs
// the tests and removes the directory. It returns the exit status.
func RunTests(m *testing.M, what string, names []string, setBinDir func(string)) int {
	if testing.Short() {
		fmt.Println(what + ": skipped with -short")
		return 0
	}
	dir, err := os.MkdirTemp("", "cutover-"+filepath.Base(what)+"-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, what+":", err)
		return 1
	}
	defer os.RemoveAll(dir)
	if err := Build(dir, os.Getenv("CUTOVER_E2E_RACE") != "0", names...); err != nil {
		fmt.Fprintln(os.Stderr, what+":", err)
		return 1
	}
	setBinDir(dir)
	return m.Run()
}

// Build builds the commands names (as RunTests names them) into dir,
// with the race detector if race.
func Build(dir string, race bool, names ...string) error {
	args := []string{"build", "-race", "-o", dir + string(filepath.Separator)}
	if !race {
		args = slices.Delete(args, 1, 2)
	}
	for _, b := range names {
		if strings.Contains(b, "/") {
			args = append(args, "github.com/cutover-dev/cutover/"+b)
			continue
		}
		args = append(args, "github.com/cutover-dev/cutover/cmd/"+b)
	}
	cmd := exec.Command("go", args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go %v: %w", args, err)
	}
	return nil
}
