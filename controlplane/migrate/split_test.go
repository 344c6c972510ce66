package migrate

import (
	"reflect"
	"strings"
	"testing"
)

func TestSplitStatements(t *testing.T) {
	type st struct {
		SQL  string
		Line int
	}
	cases := []struct {
		name   string
		driver string
		in     string
		want   []st
	}{
		{"simple", DriverSQLite, "CREATE TABLE a (x INT);\nINSERT INTO a VALUES (1);\n",
			[]st{{"CREATE TABLE a (x INT)", 1}, {"INSERT INTO a VALUES (1)", 2}}},
		{"no final semicolon", DriverPostgres, "SELECT 1;\n\nSELECT 2\n  \n",
			[]st{{"SELECT 1", 1}, {"SELECT 2", 3}}},
		{"semicolons in strings and identifiers", DriverPostgres, "INSERT INTO \"a;b\" VALUES ('x;y', 'it''s;');\nSELECT 1;",
			[]st{{"INSERT INTO \"a;b\" VALUES ('x;y', 'it''s;')", 1}, {"SELECT 1", 2}}},
		{"comments", DriverSQLite, "-- a; comment\n/* block; \n comment */ SELECT 1; -- trailing;\n-- only a comment;\n",
			[]st{{"SELECT 1", 3}}},
		{"comment inside a statement", DriverPostgres, "SELECT 1 -- one; two\n + 2;",
			[]st{{"SELECT 1 -- one; two\n + 2", 1}}},
		{"nested block comment on postgres", DriverPostgres, "/* a /* b; */ c; */ SELECT 1;",
			[]st{{"SELECT 1", 1}}},
		{"block comments do not nest on sqlite", DriverSQLite, "/* a /* b; */ SELECT 1;",
			[]st{{"SELECT 1", 1}}},
		{"dollar quotes", DriverPostgres, "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;\nDO $body$ BEGIN PERFORM 1; END $body$;",
			[]st{{"CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql", 1}, {"DO $body$ BEGIN PERFORM 1; END $body$", 2}}},
		{"dollar parameters are not quotes", DriverPostgres, "PREPARE p AS SELECT $1; SELECT a$b FROM t;",
			[]st{{"PREPARE p AS SELECT $1", 1}, {"SELECT a$b FROM t", 1}}},
		{"escape strings", DriverPostgres, "SELECT E'it\\'s; fine';\nSELECT 'a\\';",
			[]st{{"SELECT E'it\\'s; fine'", 1}, {"SELECT 'a\\'", 2}}},
		{"sqlite trigger body", DriverSQLite, "CREATE TRIGGER t AFTER INSERT ON a BEGIN\n  UPDATE b SET n = n + 1;\n  SELECT CASE WHEN 1 THEN 2 END;\nEND;\nSELECT 3;",
			[]st{{"CREATE TRIGGER t AFTER INSERT ON a BEGIN\n  UPDATE b SET n = n + 1;\n  SELECT CASE WHEN 1 THEN 2 END;\nEND", 1}, {"SELECT 3", 5}}},
		{"begin atomic", DriverPostgres, "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT 2; END;\nSELECT 3;",
			[]st{{"CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT 2; END", 1}, {"SELECT 3", 2}}},
		{"parentheses", DriverPostgres, "CREATE RULE r AS ON INSERT TO a DO ALSO (INSERT INTO b VALUES (1); INSERT INTO c VALUES (2));",
			[]st{{"CREATE RULE r AS ON INSERT TO a DO ALSO (INSERT INTO b VALUES (1); INSERT INTO c VALUES (2))", 1}}},
		{"sqlite backticks and brackets", DriverSQLite, "SELECT `a;b`, [c;d] FROM t;",
			[]st{{"SELECT `a;b`, [c;d] FROM t", 1}}},
		{"empty statements", DriverSQLite, ";;\n;SELECT 1;;", []st{{"SELECT 1", 2}}},
		{"multi-line string counts lines", DriverSQLite, "SELECT 'a\nb\nc';\nSELECT 2;", []st{{"SELECT 'a\nb\nc'", 1}, {"SELECT 2", 4}}},
		{"only comments", DriverPostgres, "-- nothing\n/* here */", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := splitStatements(tc.driver, tc.in)
			if err != nil {
				t.Fatal(err)
			}
			var gotSt []st
			for i, s := range got {
				gotSt = append(gotSt, st{s.SQL, s.Line})
				if s.Index != i+1 {
					t.Errorf("statement %d has Index %d", i+1, s.Index)
				}
			}
			if !reflect.DeepEqual(gotSt, tc.want) {
				t.Errorf("got  %+v\nwant %+v", gotSt, tc.want)
			}
		})
	}
}

func TestSplitStatementsErrors(t *testing.T) {
	cases := []struct{ driver, in, want string }{
		{DriverSQLite, "SELECT 'abc;", "line 1: unterminated string"},
		{DriverPostgres, "SELECT 1;\nSELECT \"abc;", "line 2: unterminated quoted identifier"},
		{DriverPostgres, "SELECT 1; /* a /* b */", "line 1: unterminated /* comment"},
		{DriverPostgres, "\n\nDO $x$ BEGIN END $y$;", "line 3: unterminated dollar-quoted string $x$"},
	}
	for _, tc := range cases {
		_, err := splitStatements(tc.driver, tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("splitStatements(%q) = %v, want %q", tc.in, err, tc.want)
		}
	}
}

func TestTransactionControl(t *testing.T) {
	for in, want := range map[string]bool{
		"BEGIN": true, "begin transaction": true, "COMMIT": true, "END": true, "ROLLBACK": true,
		"START TRANSACTION": true, "ABORT": true, "ROLLBACK TO SAVEPOINT s": false, "SAVEPOINT s": false,
		"START_X": false, "SELECT 1": false, "CREATE TRIGGER t AFTER INSERT ON a BEGIN SELECT 1; END": false,
	} {
		stmts, err := splitStatements(DriverSQLite, in)
		if err != nil || len(stmts) != 1 {
			t.Fatalf("%q: %v %v", in, stmts, err)
		}
		if got := stmts[0].transactionControl(); got != want {
			t.Errorf("%q: transactionControl = %v, want %v", in, got, want)
		}
	}
}
