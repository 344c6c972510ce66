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

// IrreversibleMarker, on a line of its own in an up, contract or down
// file, marks the migration irreversible: no rollback undoes it (a
// migration without a down file is irreversible too).
const IrreversibleMarker = "-- cutover:irreversible"

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
	// Contract is set for NNNN_name.contract.sql: the migration runs in the
	// contract phase, after every front-end swapped and passed its health
	// check and validate hooks. Otherwise it is an expand migration
	// (NNNN_name.up.sql), run before the swap.
	Contract bool `json:"contract,omitempty"`
	// Irreversible is set when the file, or its down file, has a line
	// IrreversibleMarker.
	Irreversible bool `json:"irreversible,omitempty"`
	// Down is the NNNN_name.down.sql beside it, which undoes it; nil when
	// there is none (the migration is then irreversible).
	Down *Down `json:"down,omitempty"`
}

// Down is the down file of a migration: NNNN_name.down.sql, with the same
// NNNN_name as its up (or contract) file.
type Down struct {
	// Name is the file name, e.g. "0002_add_email.down.sql".
	Name string `json:"name"`
	// Checksum is the hex SHA-256 of the file's content.
	Checksum string `json:"checksum"`
	// SQL is the file's content.
	SQL string `json:"sql"`
	// NoTransaction is set when the first line is NoTransactionMarker.
	NoTransaction bool `json:"no_transaction,omitempty"`
}

// Reversible says whether f can be undone: it has a down file and neither
// file is marked IrreversibleMarker.
func (f File) Reversible() bool { return f.Down != nil && !f.Irreversible }

// The kinds of migration file, the last part of the name before ".sql".
const (
	kindUp       = "up"
	kindContract = "contract"
	kindDown     = "down"
)

var fileNameRE = regexp.MustCompile(`^([0-9]+)_([^/]+)\.(up|contract|down)\.sql$`)

// namePattern says which names migration files may have.
const namePattern = "NNNN_name.up.sql (expand), NNNN_name.contract.sql (contract) or NNNN_name.down.sql (its down file), NNNN a positive integer"

// ParseFile makes a File from a file name (base name, no directory) and its
// content. It fails with errkind.InvalidArgument when the name is not
// NNNN_name.up.sql or NNNN_name.contract.sql with NNNN a positive integer
// (a down file is read with its up file, by Load).
func ParseFile(name string, content []byte) (File, error) {
	v, kind, err := parseName(name)
	if err != nil {
		return File{}, err
	}
	if kind == kindDown {
		return File{}, fmt.Errorf("migration file %q is a down file: it is read with its up or contract file (Load): %w", name, errkind.InvalidArgument)
	}
	sum, noTx, irreversible := scan(content)
	return File{
		Version:       v,
		Name:          name,
		Checksum:      sum,
		SQL:           string(content),
		NoTransaction: noTx,
		Contract:      kind == kindContract,
		Irreversible:  irreversible,
	}, nil
}

// parseName returns the version and the kind (up, contract, down) of a
// migration file name.
func parseName(name string) (int64, string, error) {
	m := fileNameRE.FindStringSubmatch(name)
	if m == nil {
		return 0, "", fmt.Errorf("migration file %q: the name must be %s: %w", name, namePattern, errkind.InvalidArgument)
	}
	v, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil || v <= 0 {
		return 0, "", fmt.Errorf("migration file %q: the version %q must be a positive integer below 2^63: %w", name, m[1], errkind.InvalidArgument)
	}
	return v, m[3], nil
}

// stem is a migration file name without its kind: "0002_add_email".
func stem(name string) string {
	name = strings.TrimSuffix(name, ".sql")
	return name[:strings.LastIndexByte(name, '.')]
}

// scan returns the checksum of content, whether its first line is
// NoTransactionMarker and whether a line is IrreversibleMarker.
func scan(content []byte) (checksum string, noTx, irreversible bool) {
	sum := sha256.Sum256(content)
	sql := strings.TrimPrefix(string(content), "\ufeff")
	for i, line := range strings.Split(sql, "\n") {
		line = strings.TrimSpace(line)
		noTx = noTx || (i == 0 && line == NoTransactionMarker)
		irreversible = irreversible || line == IrreversibleMarker
	}
	return hex.EncodeToString(sum[:]), noTx, irreversible
}

// parseDown makes the Down of a down file.
func parseDown(name string, content []byte) (*Down, bool) {
	sum, noTx, irreversible := scan(content)
	return &Down{Name: name, Checksum: sum, SQL: string(content), NoTransaction: noTx}, irreversible
}

// Load reads the migration files at the top level of fsys, sorted by
// version, each with its down file when it has one. Entries that do not
// end in ".sql" (and directories) are ignored. It fails with
// errkind.InvalidArgument for a ".sql" file whose name is not one of
// namePattern's, for two files with the same version (naming both), and
// for a down file without an up or contract file of the same NNNN_name.
func Load(fsys fs.FS) ([]File, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("reading migrations: %w", err)
	}
	var files []File
	var problems []string
	downs := map[string]string{} // stem → down file name
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		if !fileNameRE.MatchString(e.Name()) {
			problems = append(problems, fmt.Sprintf("%q is not named %s", e.Name(), namePattern))
			continue
		}
		if _, kind, err := parseName(e.Name()); err == nil && kind == kindDown {
			downs[stem(e.Name())] = e.Name()
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
	for i := range files {
		name, ok := downs[stem(files[i].Name)]
		if !ok {
			continue
		}
		delete(downs, stem(files[i].Name))
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("reading migration %q: %w", name, err)
		}
		var irreversible bool
		files[i].Down, irreversible = parseDown(name, b)
		files[i].Irreversible = files[i].Irreversible || irreversible
	}
	for _, name := range downs {
		problems = append(problems, fmt.Sprintf("%q has no up or contract file of the same name (%s.up.sql or %s.contract.sql) to undo", name, stem(name), stem(name)))
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
		sort.Strings(problems)
		return nil, fmt.Errorf("migrations: %s; rename the files so each migration has its own NNNN version, named %s: %w",
			strings.Join(problems, "; "), namePattern, errkind.InvalidArgument)
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
