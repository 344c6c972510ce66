package migrate

import (
	"slices"
	"strings"
	"testing"
)

// FuzzSplitStatements feeds the splitter arbitrary migration files, for
// both drivers: it never panics; the statements it returns are, in order,
// pieces of the file, numbered from 1, on nondecreasing lines inside the
// file, all but the last terminated; each split again on its own is that
// one statement; and the statements joined again by ';' split to the same
// statements.
func FuzzSplitStatements(f *testing.F) {
	for _, s := range []string{
		"CREATE TABLE a (x INT);\nINSERT INTO a VALUES (1);\n",
		"SELECT 1;\n\nSELECT 2\n  \n",
		"INSERT INTO \"a;b\" VALUES ('x;y', 'it''s;');\nSELECT 1;",
		"-- a; comment\n/* block; \n comment */ SELECT 1; -- trailing;\n-- only a comment;\n",
		"SELECT 1 -- one; two\n + 2;",
		"/* a /* b; */ c; */ SELECT 1;",
		"CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;\nDO $body$ BEGIN PERFORM 1; END $body$;",
		"PREPARE p AS SELECT $1; SELECT a$b FROM t;",
		"SELECT E'it\\'s; fine';\nSELECT 'a\\';",
		"CREATE TRIGGER t AFTER INSERT ON a BEGIN\n  UPDATE b SET n = n + 1;\n  SELECT CASE WHEN 1 THEN 2 END;\nEND;\nSELECT 3;",
		"CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT 2; END;\nSELECT 3;",
		"CREATE RULE r AS ON INSERT TO a DO ALSO (INSERT INTO b VALUES (1); INSERT INTO c VALUES (2));",
		"SELECT `a;b`, [c;d] FROM t;",
		";;\n;SELECT 1;;",
		"BEGIN; ROLLBACK TO s; START TRANSACTION; COMMIT;",
		"SELECT 'unterminated",
		"/* unterminated",
		"SELECT $tag$ unterminated",
		"SELECT \"x",
		"SELECT (((;",
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, sql string, postgres bool) {
		driver := DriverSQLite
		if postgres {
			driver = DriverPostgres
		}
		stmts, err := splitStatements(driver, sql)
		if err != nil {
			if !strings.Contains(err.Error(), "unterminated") {
				t.Fatalf("%s %q: error %v does not say what is unterminated", driver, sql, err)
			}
			return
		}
		lines := 1 + strings.Count(sql, "\n")
		pos, prevLine := 0, 1
		for i, s := range stmts {
			if s.Index != i+1 || s.Line < prevLine || s.Line > lines {
				t.Fatalf("%s %q: statement %d is %+v (previous line %d, %d lines)", driver, sql, i, s, prevLine, lines)
			}
			if s.SQL == "" || strings.TrimLeft(s.SQL, " \t\r\n\f\v") != s.SQL {
				t.Fatalf("%s %q: statement %d %q does not start at a token", driver, sql, i, s.SQL)
			}
			if !s.Terminated && i != len(stmts)-1 {
				t.Fatalf("%s %q: statement %d %q is unterminated but not the last", driver, sql, i, s.SQL)
			}
			k := strings.Index(sql[pos:], s.SQL)
			if k < 0 {
				t.Fatalf("%s %q: statement %d %q is not a piece of the file after offset %d", driver, sql, i, s.SQL, pos)
			}
			pos += k + len(s.SQL)
			prevLine = s.Line

			alone, err := splitStatements(driver, s.SQL)
			want := strings.TrimRight(s.SQL, " \t\r\n")
			if err != nil || len(alone) != 1 || alone[0].SQL != want || alone[0].Terminated || alone[0].Line != 1 || !slices.Equal(alone[0].words, s.words) {
				t.Fatalf("%s %q: statement %d %q, split alone, gives %+v (%v)", driver, sql, i, s.SQL, alone, err)
			}
		}

		var joined strings.Builder
		for _, s := range stmts {
			joined.WriteString(s.SQL)
			if s.Terminated { // an unterminated last statement may hold an open '(' that would take the ';'
				joined.WriteString(";\n")
			}
		}
		again, err := splitStatements(driver, joined.String())
		if err != nil || len(again) != len(stmts) {
			t.Fatalf("%s %q: statements joined as %q split to %+v (%v)", driver, sql, joined.String(), again, err)
		}
		for i := range again {
			if again[i].SQL != stmts[i].SQL || !slices.Equal(again[i].words, stmts[i].words) || again[i].Terminated != stmts[i].Terminated {
				t.Fatalf("%s %q: statements joined as %q: statement %d is %+v, was %+v", driver, sql, joined.String(), i, again[i], stmts[i])
			}
		}
	})
}
