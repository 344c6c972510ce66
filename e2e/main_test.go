package e2e

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/cutover-dev/cutover/internal/localcluster"
)

// binDir holds the binaries TestMain built.
var binDir string

// binaries are the commands the tests start, by package directory under
// cmd/, and the test apps, by directory in the module (bin("listen")).
var binaries = []string{"cutover-controller", "cutover-agent", "cutoverctl", "cutover-demo", "examples/listen"}

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(localcluster.RunTests(m, "e2e", binaries, func(dir string) { binDir = dir }))
}

// bin returns the path of a built binary.
func bin(name string) string { return filepath.Join(binDir, name) }
