package migrate

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/cutover-dev/cutover/pkg/errkind"
)

// loadFiles makes Files, downs paired, from name, content pairs.
func loadFiles(t *testing.T, nameContent ...string) []File {
	t.Helper()
	fsys := fstest.MapFS{}
	for i := 0; i < len(nameContent); i += 2 {
		fsys[nameContent[i]] = &fstest.MapFile{Data: []byte(nameContent[i+1])}
	}
	files, err := Load(fsys)
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// v1Files is what version 1 of "hello" applied: a table with a row.
func v1Files(t *testing.T) []File {
	return loadFiles(t, "0001_users.up.sql", "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, nick TEXT);\nINSERT INTO users (id, name, nick) VALUES (1, 'ann', 'a');\n")
}

// v2Files adds to v1 an expand (a column and a table, with downs) and a
// contract (dropping the old column, with a down that puts it back).
func v2Files(t *testing.T, extra ...string) []File {
	return append(v1Files(t), loadFiles(t, append([]string{
		"0002_email.up.sql", "ALTER TABLE users ADD COLUMN email TEXT;\nUPDATE users SET email = 'ann@example.com';\n",
		"0002_email.down.sql", "ALTER TABLE users DROP COLUMN email;\n",
		"0003_audit.up.sql", "CREATE TABLE audit (id INTEGER PRIMARY KEY, what TEXT);\n",
		"0003_audit.down.sql", "DROP TABLE audit;\n",
		"0004_drop_nick.contract.sql", "ALTER TABLE users DROP COLUMN nick;\n",
		"0004_drop_nick.down.sql", "ALTER TABLE users ADD COLUMN nick TEXT;\n",
	}, extra...)...)...)
}

// roundTrip returns a copy of p as the controller stores it (JSON).
func roundTrip(t *testing.T, p *Plan) *Plan {
	t.Helper()
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var out Plan
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return &out
}

// v1ThenPlanV2 applies v1 to a fresh database and plans files on it for
// deployment dep-2.
func v1ThenPlanV2(t *testing.T, be backend, files []File) (DB, *Plan) {
	t.Helper()
	db := be.fresh(t)
	apply(t, db, "dep-1", AppFiles{Application: "hello", Files: v1Files(t)})
	return db, generateFor(t, db, "dep-2", files)
}

// generateFor plans files of application "hello" for deployment.
func generateFor(t *testing.T, db DB, deployment string, files []File) *Plan {
	t.Helper()
	p, err := Generate(ctxT(t), db, deployment, []AppFiles{{Application: "hello", Files: files}})
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	return p
}

func checksumOf(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func exec(t *testing.T, db DB, p *Plan) {
	t.Helper()
	if _, err := Execute(ctxT(t), db, p); err != nil {
		t.Fatalf("Execute %s: %v", p.PhaseName(), err)
	}
}

func TestPhasesAndDowns(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		db, p := v1ThenPlanV2(t, be, v2Files(t))
		p = roundTrip(t, p)
		if len(p.Pending) != 2 || p.Contract == nil || len(p.Contract.Pending) != 1 || p.Contract.Pending[0].Name != "0004_drop_nick.contract.sql" {
			t.Fatalf("phases: expand %+v, contract %+v", p.Pending, p.Contract)
		}
		if p.Down == nil || p.Contract.Down == nil || len(p.Irreversible) != 0 {
			t.Fatalf("downs: %+v %+v irreversible %+v", p.Down, p.Contract.Down, p.Irreversible)
		}
		if got := []string{p.Down.Pending[0].Name, p.Down.Pending[1].Name}; got[0] != "0003_audit.down.sql" || got[1] != "0002_email.down.sql" {
			t.Errorf("down order = %v, want newest first", got)
		}
		for _, want := range []string{"cutover down script", "undoes 2 migration(s) of the expand phase", "DROP TABLE audit", "DELETE FROM cutover_schema_migrations WHERE application = 'hello' AND version = 3 AND deployment_id = 'dep-2'"} {
			if !strings.Contains(p.Down.Script, want) {
				t.Errorf("down script lacks %q:\n%s", want, p.Down.Script)
			}
		}
		if !strings.Contains(p.Contract.Script, "cutover contract script") || strings.Contains(p.Script, "DROP COLUMN nick") {
			t.Errorf("contract SQL in the wrong script:\nexpand:\n%s\ncontract:\n%s", p.Script, p.Contract.Script)
		}

		exec(t, db, p)
		exec(t, db, p.Contract)
		pool := connect(t, db)
		if got := column(t, pool, "SELECT name FROM cutover_schema_migrations ORDER BY version"); strings.Join(got, ",") != "0001_users.up.sql,0002_email.up.sql,0003_audit.up.sql,0004_drop_nick.contract.sql" {
			t.Errorf("bookkeeping after both phases = %v", got)
		}
		// Undo in the order rollback --with-database runs: contract, then expand.
		exec(t, db, p.Contract.Down)
		if got := snapshot(t, db); !strings.Contains(got, "nick") || strings.Contains(got, "0004_drop_nick") {
			t.Errorf("contract down did not put nick back:\n%s", got)
		}
		exec(t, db, p.Down)
		after := snapshot(t, db)
		// The column nick comes back empty and last: compare the schema
		// and bookkeeping, not nick's values (a dropped column's data is gone).
		if !strings.Contains(after, "cutover_schema_migrations") || strings.Contains(after, "0002_email") || strings.Contains(after, "audit") || strings.Contains(after, "email") {
			t.Errorf("after the downs:\n%s", after)
		}
	})
}

func TestExpandDownRestoresExactly(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		db := be.fresh(t)
		apply(t, db, "dep-1", AppFiles{Application: "hello", Files: v1Files(t)})
		before := snapshot(t, db)
		p := generateFor(t, db, "dep-2", v2Files(t))
		exec(t, db, p)
		if snapshot(t, db) == before {
			t.Fatal("expand changed nothing")
		}
		exec(t, db, p.Down)
		unchanged(t, db, before, "expand then its down")
	})
}

func TestIrreversible(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		db := be.fresh(t)
		apply(t, db, "dep-0", AppFiles{Application: "hello", Files: v1Files(t)})
		files := v2Files(t,
			"0005_marked.up.sql", "CREATE TABLE marked (id INTEGER);\n-- cutover:irreversible\n",
			"0005_marked.down.sql", "DROP TABLE marked;\n",
			"0006_nodown.up.sql", "CREATE TABLE nodown (id INTEGER);\n")
		p := generateFor(t, db, "dep-1", files)
		if len(p.Irreversible) != 2 || p.Irreversible[0].Name != "0006_nodown.up.sql" || p.Irreversible[1].Name != "0005_marked.up.sql" {
			t.Fatalf("Irreversible = %+v", p.Irreversible)
		}
		if !strings.Contains(p.Irreversible[0].Reason, "no down file 0006_nodown.down.sql") || !strings.Contains(p.Irreversible[1].Reason, IrreversibleMarker) {
			t.Errorf("reasons = %+v", p.Irreversible)
		}
		if !strings.Contains(p.Down.Script, "Not undone, stays applied: application \"hello\" migration 0006_nodown.up.sql") {
			t.Errorf("down script does not name what stays:\n%s", p.Down.Script)
		}
		for _, d := range p.Down.Pending {
			if d.Version >= 5 {
				t.Errorf("down plan undoes irreversible %s", d.Name)
			}
		}
	})
}

func TestDownRefusesChangedRows(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		db, p := v1ThenPlanV2(t, be, v2Files(t))
		exec(t, db, p)
		// Another application migrating meanwhile does not stop the down.
		apply(t, db, "dep-3", AppFiles{Application: "shop", Files: mkFiles(t, "0001_orders.up.sql", "CREATE TABLE orders (id INTEGER);")})
		pool := connect(t, db)
		if _, err := pool.Exec("DELETE FROM cutover_schema_migrations WHERE version = 3 AND application = 'hello'"); err != nil {
			t.Fatal(err)
		}
		before := snapshot(t, db)
		_, err := Execute(ctxT(t), db, p.Down)
		if !errors.Is(err, errkind.FailedPrecondition) {
			t.Fatalf("want FailedPrecondition, got %v", err)
		}
		mentions(t, err, "0003_audit.up.sql", "nothing was undone")
		unchanged(t, db, before, "a refused down")
		if _, err := pool.Exec("INSERT INTO cutover_schema_migrations (application, version, name, checksum, deployment_id) VALUES ('hello', 3, '0003_audit.up.sql', " + quote(p.Pending[1].Checksum) + ", 'dep-2')"); err != nil {
			t.Fatal(err)
		}
		exec(t, db, p.Down)
		if got := column(t, pool, "SELECT application FROM cutover_schema_migrations ORDER BY application, version"); strings.Join(got, ",") != "hello,shop" {
			t.Errorf("bookkeeping = %v", got)
		}
	})
}

func TestCheckRunsDownsOnShadow(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		files := v2Files(t)
		files[2].Down.SQL = "DROP TABLE no_such_table;\n"
		files[2].Down.Checksum = checksumOf(files[2].Down.SQL)
		db, p := v1ThenPlanV2(t, be, files)
		before := snapshot(t, db)
		err := Check(ctxT(t), db, p, Shadow{Dir: t.TempDir(), Files: map[string][]File{"hello": files}})
		mentions(t, err, "0003_audit.down.sql", "no_such_table")
		unchanged(t, db, before, "Check")
	})
}
