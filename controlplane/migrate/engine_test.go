package migrate

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/cutover-dev/cutover/pkg/errkind"
)

const (
	sqlUsers  = "-- users and a first row\nCREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);\nINSERT INTO users (id, name) VALUES (1, 'semi;colon');\n"
	sqlEmail  = "ALTER TABLE users ADD COLUMN email TEXT;\n"
	sqlOrders = "CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER)"
)

func threeFiles(t *testing.T) []File {
	return mkFiles(t, "0001_users.up.sql", sqlUsers, "0002_email.up.sql", sqlEmail, "0010_orders.up.sql", sqlOrders)
}

func TestGenerateThenExecute(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		db := be.fresh(t)
		files := threeFiles(t)
		apps := []AppFiles{{Application: "hello", Files: files[:2]}, {Application: "shop", Files: files[2:]}}
		p, err := Generate(ctxT(t), db, "dep-1", apps)
		if err != nil {
			t.Fatalf("Generate: %v", err)
		}
		want := []Pending{
			{Application: "hello", Version: 1, Name: "0001_users.up.sql", Checksum: files[0].Checksum},
			{Application: "hello", Version: 2, Name: "0002_email.up.sql", Checksum: files[1].Checksum},
			{Application: "shop", Version: 10, Name: "0010_orders.up.sql", Checksum: files[2].Checksum},
		}
		if !reflect.DeepEqual(p.Pending, want) {
			t.Fatalf("Pending = %+v, want %+v", p.Pending, want)
		}
		if len(p.Groups) != 1 || len(p.Groups[0].Steps) != 3 {
			t.Fatalf("want one group of three, got %+v", p.Groups)
		}
		for _, s := range []string{"-- ===== hello: 0001_users.up.sql", "-- ===== shop: 0010_orders.up.sql", "COMMIT;",
			"INSERT INTO cutover_schema_migrations", "'dep-1'", "user_id INTEGER)\n;\n"} {
			if !strings.Contains(p.Script, s) {
				t.Errorf("script lacks %q:\n%s", s, p.Script)
			}
		}
		if strings.Index(p.Script, "0002_email") > strings.Index(p.Script, "0010_orders") {
			t.Errorf("script out of order:\n%s", p.Script)
		}

		// The controller stores the plan as JSON; run the decoded copy.
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		var stored Plan
		if err := json.Unmarshal(b, &stored); err != nil {
			t.Fatal(err)
		}
		res, err := Execute(ctxT(t), db, &stored)
		if err != nil {
			t.Fatalf("Execute: %v", err)
		}
		if !reflect.DeepEqual(res.Applied, want) || res.Duration <= 0 {
			t.Errorf("Result = %+v", res)
		}
		pool := connect(t, db)
		if got := column(t, pool, "SELECT name FROM users"); !reflect.DeepEqual(got, []string{"semi;colon"}) {
			t.Errorf("users rows = %q", got)
		}
		if got := column(t, pool, "SELECT application || ':' || CAST(version AS TEXT) || ':' || deployment_id FROM cutover_schema_migrations ORDER BY version"); !reflect.DeepEqual(got, []string{"hello:1:dep-1", "hello:2:dep-1", "shop:10:dep-1"}) {
			t.Errorf("bookkeeping = %q", got)
		}

		// Nothing pending: the plan is empty, and Execute does not connect.
		again, err := Generate(ctxT(t), db, "dep-2", apps)
		if err != nil {
			t.Fatalf("second Generate: %v", err)
		}
		if !again.Empty() || again.Script != "" || len(again.Groups) != 0 {
			t.Fatalf("want an empty plan, got %+v", again)
		}
		unreachable := DB{Driver: db.Driver, DSN: "postgres://u:secret@127.0.0.1:1/none?connect_timeout=1"}
		if db.Driver == DriverSQLite {
			unreachable.DSN = "/nonexistent-dir/x.db"
		}
		if _, err := Execute(ctxT(t), unreachable, again); err != nil {
			t.Errorf("Execute of an empty plan connected: %v", err)
		}

		// A new file: only it is pending.
		apps[0].Files = append(apps[0].Files[:2:2], mkFiles(t, "0003_more.up.sql", "CREATE TABLE more (x TEXT);")...)
		third, err := Generate(ctxT(t), db, "dep-3", apps)
		if err != nil {
			t.Fatalf("third Generate: %v", err)
		}
		if len(third.Pending) != 1 || third.Pending[0].Name != "0003_more.up.sql" {
			t.Fatalf("want only 0003 pending, got %+v", third.Pending)
		}
		if third.Basis == p.Basis {
			t.Error("the basis did not change after applying migrations")
		}
	})
}

func TestGenerateWritesNothing(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		db := be.fresh(t)
		files := threeFiles(t)
		app := func(n int) AppFiles { return AppFiles{Application: "hello", Files: files[:n]} }

		before := snapshot(t, db)
		if _, err := Generate(ctxT(t), db, "dep-1", []AppFiles{app(3)}); err != nil {
			t.Fatal(err)
		}
		unchanged(t, db, before, "Generate changed an empty database")

		apply(t, db, "dep-1", app(1))
		empty := before
		before = snapshot(t, db)
		if before == empty || !strings.Contains(before, "semi;colon") {
			t.Fatalf("the snapshot does not show the applied migration:\n%s", before)
		}
		p, err := Generate(ctxT(t), db, "dep-2", []AppFiles{app(3)})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Pending) != 2 {
			t.Fatalf("want 2 pending, got %+v", p.Pending)
		}
		unchanged(t, db, before, "Generate changed the database")
	})
}

func TestDrift(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		db := be.fresh(t)
		files := threeFiles(t)
		apply(t, db, "dep-1", AppFiles{Application: "hello", Files: files[:2]})
		edited := mkFiles(t, "0002_email.up.sql", sqlEmail+"-- edited\n")[0]
		cases := []struct {
			name  string
			files []File
			want  []string
		}{
			{"changed checksum", []File{files[0], edited}, []string{`"hello"`, "migration 2", "0002_email.up.sql", files[1].Checksum, edited.Checksum}},
			{"missing from the release", files[:1], []string{`"hello"`, "migration 2", "0002_email.up.sql", files[1].Checksum, "dep-1", "has no migration 2"}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				before := snapshot(t, db)
				_, err := Generate(ctxT(t), db, "dep-2", []AppFiles{{Application: "hello", Files: tc.files}})
				if !errors.Is(err, errkind.FailedPrecondition) {
					t.Fatalf("want FailedPrecondition, got %v", err)
				}
				mentions(t, err, tc.want...)
				unchanged(t, db, before, "a refused Generate changed the database")
			})
		}
		t.Run("new file below an applied one", func(t *testing.T) {
			apply(t, db, "dep-3", AppFiles{Application: "hello", Files: append(files[:2:2], files[2])})
			below := mkFiles(t, "0005_between.up.sql", "CREATE TABLE between_t (x TEXT);")[0]
			_, err := Generate(ctxT(t), db, "dep-4", []AppFiles{{Application: "hello", Files: []File{files[0], files[1], below, files[2]}}})
			if !errors.Is(err, errkind.FailedPrecondition) || !strings.Contains(err.Error(), "0005_between.up.sql") {
				t.Fatalf("want FailedPrecondition naming 0005, got %v", err)
			}
		})
		t.Run("other applications are not drift", func(t *testing.T) {
			if _, err := Generate(ctxT(t), db, "dep-5", []AppFiles{{Application: "other", Files: files[:1]}}); err != nil {
				t.Fatal(err)
			}
		})
	})
}

func TestDatabaseChangedSinceGenerate(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		db := be.fresh(t)
		files := threeFiles(t)
		p := generate(t, db, files)
		apply(t, db, "dep-other", AppFiles{Application: "hello", Files: files[:1]})
		before := snapshot(t, db)
		res, err := Execute(ctxT(t), db, p)
		if !errors.Is(err, errkind.FailedPrecondition) {
			t.Fatalf("want FailedPrecondition, got %v", err)
		}
		mentions(t, err, "the database changed since prepare", "0001_users.up.sql", "dep-other", "prepare again")
		if len(res.Applied) != 0 {
			t.Errorf("Applied = %+v", res.Applied)
		}
		unchanged(t, db, before, "a refused Execute changed the database")
	})
}

func TestFailingMigrationRollsBack(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		db := be.fresh(t)
		base := mkFiles(t, "0001_base.up.sql", "CREATE TABLE base (x TEXT);")
		apply(t, db, "dep-0", AppFiles{Application: "hello", Files: base})
		files := append(base, mkFiles(t,
			"0002_users.up.sql", sqlUsers,
			"0003_bad.up.sql", "CREATE TABLE half (x TEXT);\n\n-- the next one fails\nINSERT INTO no_such_table (x)\n  VALUES ('a;b');\n",
			"0004_orders.up.sql", sqlOrders)...)
		p := generate(t, db, files)
		before := snapshot(t, db)
		res, err := Execute(ctxT(t), db, p)
		var se *StatementError
		if !errors.As(err, &se) || !errors.Is(err, errkind.FailedPrecondition) {
			t.Fatalf("want a *StatementError of kind FailedPrecondition, got %T %v", err, err)
		}
		t.Logf("error: %v", err)
		if se.File != "0003_bad.up.sql" || se.Statement != 2 || se.Line != 4 || se.Version != 3 || se.Application != "hello" {
			t.Errorf("StatementError = %+v, want 0003_bad.up.sql statement 2 line 4", se)
		}
		if !strings.Contains(strings.ToLower(se.Message), "no_such_table") {
			t.Errorf("Message lacks the database's message: %q", se.Message)
		}
		mentions(t, err, "0003_bad.up.sql", "statement 2 (line 4)", "rolled back")
		if len(res.Applied) != 0 {
			t.Errorf("Applied = %+v, want none", res.Applied)
		}
		unchanged(t, db, before, "the failed group left changes")
	})
}

func TestFailureKeepsEarlierGroups(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		db := be.fresh(t)
		files := mkFiles(t,
			"0001_users.up.sql", sqlUsers,
			"0002_index.up.sql", NoTransactionMarker+"\nCREATE INDEX users_x ON no_such_table (x);\n",
			"0003_orders.up.sql", sqlOrders)
		p := generate(t, db, files)
		res, err := Execute(ctxT(t), db, p)
		var se *StatementError
		if !errors.As(err, &se) || se.File != "0002_index.up.sql" || se.Statement != 1 || se.Line != 2 {
			t.Fatalf("want a *StatementError for 0002 statement 1 line 2, got %v", err)
		}
		mentions(t, err, "outside a transaction", "the earlier groups stay applied and recorded (0001_users.up.sql)")
		if len(res.Applied) != 1 || res.Applied[0].Version != 1 {
			t.Errorf("Applied = %+v, want only migration 1", res.Applied)
		}
		pool := connect(t, db)
		if got := column(t, pool, "SELECT name FROM cutover_schema_migrations"); !reflect.DeepEqual(got, []string{"0001_users.up.sql"}) {
			t.Errorf("bookkeeping = %q", got)
		}
		if got := snapshot(t, db); !strings.Contains(got, "rows of users") || strings.Contains(got, "rows of orders") {
			t.Errorf("want users applied and orders not:\n%s", got)
		}
		// Prepare again: only 0002 and 0003 are pending.
		again, err := Generate(ctxT(t), db, "dep-2", []AppFiles{{Application: "hello", Files: files}})
		if err != nil || len(again.Pending) != 2 || again.Pending[0].Version != 2 {
			t.Errorf("second Generate = %+v, %v", again, err)
		}
	})
}

func TestNoTransactionMigration(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		db := be.fresh(t)
		noTx := NoTransactionMarker + "\nVACUUM;\n"
		if be.driver == DriverPostgres {
			noTx = NoTransactionMarker + "\nCREATE INDEX CONCURRENTLY users_name ON users (name);\n"
		}
		files := mkFiles(t,
			"0001_users.up.sql", sqlUsers,
			"0002_email.up.sql", sqlEmail,
			"0003_index.up.sql", noTx,
			"0004_orders.up.sql", sqlOrders)
		if !files[2].NoTransaction || files[1].NoTransaction {
			t.Fatal("the marker was not read")
		}
		p := generate(t, db, files)
		var shape []string
		for _, g := range p.Groups {
			var names []string
			for _, s := range g.Steps {
				names = append(names, s.Name[:4])
			}
			shape = append(shape, map[bool]string{true: "notx:", false: "tx:"}[g.NoTransaction]+strings.Join(names, ","))
		}
		if want := []string{"tx:0001,0002", "notx:0003", "tx:0004"}; !reflect.DeepEqual(shape, want) {
			t.Fatalf("groups = %v, want %v", shape, want)
		}
		// In the script the index comes after the first COMMIT, with its
		// bookkeeping row right after it, before the next BEGIN.
		s := p.Script
		idx := strings.Index(s, "0003_index.up.sql (migration 3")
		commit1 := strings.Index(s, "COMMIT;")
		rec := strings.Index(s, "VALUES ('hello', 3,")
		begin2 := strings.LastIndex(s, "\nBEGIN")
		if !(commit1 < idx && idx < rec && rec < begin2) {
			t.Errorf("script order wrong (commit %d, index %d, record %d, begin %d):\n%s", commit1, idx, rec, begin2, s)
		}
		res, err := Execute(ctxT(t), db, p)
		if err != nil {
			t.Fatalf("Execute: %v", err)
		}
		if len(res.Applied) != 4 {
			t.Errorf("Applied = %+v", res.Applied)
		}
		pool := connect(t, db)
		if be.driver == DriverPostgres {
			valid := column(t, pool, "SELECT i.indisvalid::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = 'users_name'")
			if !reflect.DeepEqual(valid, []string{"true"}) {
				t.Errorf("index users_name valid = %v", valid)
			}
		}
		if got := column(t, pool, "SELECT name FROM cutover_schema_migrations ORDER BY version"); len(got) != 4 {
			t.Errorf("bookkeeping = %q", got)
		}
	})
}

func TestExecuteRefusesBadPlans(t *testing.T) {
	db := freshSQLite(t)
	files := threeFiles(t)
	p := generate(t, db, files)
	edited := *p
	edited.Script = strings.Replace(p.Script, "users", "userz", 1)
	pg := *p
	pg.Driver = DriverPostgres
	for name, plan := range map[string]*Plan{"edited script": &edited, "other driver": &pg} {
		if _, err := Execute(ctxT(t), db, plan); !errors.Is(err, errkind.InvalidArgument) {
			t.Errorf("%s: want InvalidArgument, got %v", name, err)
		}
	}
	if got := snapshot(t, db); got != "no database file" {
		t.Errorf("a refused plan touched the database: %s", got)
	}
}

func TestGenerateRefusesBadInput(t *testing.T) {
	db := freshSQLite(t)
	good := threeFiles(t)
	tampered := good[0]
	tampered.SQL += "DROP TABLE users;"
	cases := map[string][]AppFiles{
		"transaction control": {{Application: "a", Files: mkFiles(t, "0001_x.up.sql", "BEGIN;\nCREATE TABLE x (y TEXT);\nCOMMIT;")}},
		"unterminated string": {{Application: "a", Files: mkFiles(t, "0001_x.up.sql", "INSERT INTO x VALUES ('oops);")}},
		"checksum mismatch":   {{Application: "a", Files: []File{tampered}}},
		"duplicate app":       {{Application: "a", Files: good[:1]}, {Application: "a", Files: good[1:2]}},
		"empty app name":      {{Application: "", Files: good[:1]}},
		"out of order":        {{Application: "a", Files: []File{good[1], good[0]}}},
	}
	for name, apps := range cases {
		if _, err := Generate(ctxT(t), db, "dep-1", apps); !errors.Is(err, errkind.InvalidArgument) {
			t.Errorf("%s: want InvalidArgument, got %v", name, err)
		}
	}
	if _, err := Generate(ctxT(t), db, "", []AppFiles{{Application: "a", Files: good}}); !errors.Is(err, errkind.InvalidArgument) {
		t.Errorf("empty deployment id: want InvalidArgument, got %v", err)
	}
	noTx := mkFiles(t, "0001_x.up.sql", NoTransactionMarker+"\nBEGIN;\nCREATE TABLE x (y TEXT);\nCOMMIT;")
	if _, err := Generate(ctxT(t), db, "dep-1", []AppFiles{{Application: "a", Files: noTx}}); err != nil {
		t.Errorf("a no-transaction file may manage its own transaction: %v", err)
	}
}

func TestMissingNoTransactionMarkerIsExplained(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		db := be.fresh(t)
		stmt := "VACUUM;"
		if be.driver == DriverPostgres {
			stmt = "CREATE INDEX CONCURRENTLY users_name ON users (name);"
		}
		files := mkFiles(t, "0001_users.up.sql", sqlUsers, "0002_index.up.sql", stmt)
		p := generate(t, db, files)
		_, err := Execute(ctxT(t), db, p)
		if !errors.Is(err, errkind.FailedPrecondition) {
			t.Fatalf("want FailedPrecondition, got %v", err)
		}
		mentions(t, err, "0002_index.up.sql", "statement 1 (line 1)", "start the file with \""+NoTransactionMarker+"\"")
	})
}
