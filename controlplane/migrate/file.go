package migrate

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/cutover-dev/cutover/pkg/errkind"
)

// NoTransactionMarker is the first line that marks a file whose statements
// must run outside a transaction (PostgreSQL's CREATE INDEX CONCURRENTLY,
// SQLite's VACUUM).
const NoTransactionMarker = "-- cutover:no-transaction"

// File is one migration file of an application.
type File struct {
	// Version is the NNNN of NNNN_name.up.sql; positive.
	Version int64 `json:"version"`
	// Name is the file name, e.g. "0001_create_users.up.sql".
	Name string `json:"name"`
	// Checksum is the hex SHA-256 of the file's content.
	Checksum string `json:"checksum"`
	// SQL is the file's content.
	SQL string `json:"sql"`
	// NoTransaction is set when the first line is NoTransactionMarker.
	NoTransaction bool `json:"no_transaction,omitempty"`
}

var fileNameRE = regexp.MustCompile(`^([0-9]+)_([^/]+)\.up\.sql$`)

// ParseFile makes a File from a file name (base name, no directory) and its
// content. It fails with errkind.InvalidArgument when the name is not
// NNNN_name.up.sql with NNNN a positive integer.
func ParseFile(name string, content []byte) (File, error) {
	m := fileNameRE.FindStringSubmatch(name)
	if m == nil {
		return File{}, fmt.Errorf("migration file %q: the name must be NNNN_name.up.sql (NNNN a positive integer): %w", name, errkind.InvalidArgument)
	}
	v, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil || v <= 0 {
		return File{}, fmt.Errorf("migration file %q: the version %q must be a positive integer below 2^63: %w", name, m[1], errkind.InvalidArgument)
	}
	sum := sha256.Sum256(content)
	sql := string(content)
	first, _, _ := strings.Cut(sql, "\n")
	first = strings.TrimPrefix(first, "\ufeff")
	return File{
		Version:       v,
		Name:          name,
		Checksum:      hex.EncodeToString(sum[:]),
		SQL:           sql,
		NoTransaction: strings.TrimSpace(first) == NoTransactionMarker,
	}, nil
}

// Load reads the migration files at the top level of fsys, sorted by
// version. Entries that do not end in ".sql" (and directories) are ignored.
// It fails with errkind.InvalidArgument for a ".sql" file whose name is not
// NNNN_name.up.sql, and for two files with the same version (naming both).
func Load(fsys fs.FS) ([]File, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("reading migrations: %w", err)
	}
	var files []File
	var problems []string
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		if !fileNameRE.MatchString(e.Name()) {
			problems = append(problems, fmt.Sprintf("%q is not named NNNN_name.up.sql (NNNN a positive integer)", e.Name()))
			continue
		}
		b, err := fs.ReadFile(fsys, e.Name())
		if err != nil {
			return nil, fmt.Errorf("reading migration %q: %w", e.Name(), err)
		}
		f, err := ParseFile(e.Name(), b)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%q: version is not a positive integer below 2^63", e.Name()))
			continue
		}
		files = append(files, f)
	}
	sort.SliceStable(files, func(i, j int) bool {
		if files[i].Version != files[j].Version {
			return files[i].Version < files[j].Version
		}
		return files[i].Name < files[j].Name
	})
	for i := 1; i < len(files); i++ {
		if files[i].Version == files[i-1].Version {
			problems = append(problems, fmt.Sprintf("%q and %q have the same version %d", files[i-1].Name, files[i].Name, files[i].Version))
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("migrations: %s; rename the files so each has its own NNNN_name.up.sql version: %w",
			strings.Join(problems, "; "), errkind.InvalidArgument)
	}
	return files, nil
}

// LoadDir is Load on the directory dir; errors name dir.
func LoadDir(dir string) ([]File, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("migrations dir: %v: %w", err, errkind.InvalidArgument)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("migrations dir %q is not a directory: %w", dir, errkind.InvalidArgument)
	}
	files, err := Load(os.DirFS(dir))
	if err != nil {
		return nil, fmt.Errorf("dir %q: %w", dir, err)
	}
	return files, nil
}
