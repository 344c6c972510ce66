package migrate

import (
	"slices"
	"strings"
)

// Unproven is a statement of a plan whose outcome depends on the rows of
// the database: it may fail (or do something else) on the environment's
// database although it ran on a shadow database that has the schema and no
// rows. The plan lists them so that a reviewer knows what prepare could
// not prove.
type Unproven struct {
	Application string `json:"application"`
	File        string `json:"file"`
	// Statement is the statement's 1-based index in File.
	Statement int `json:"statement"`
	// Line is the line of File where it starts.
	Line int `json:"line"`
	// Kind names what makes it depend on the rows, e.g. "UPDATE",
	// "CREATE UNIQUE INDEX", "ALTER TABLE … SET NOT NULL".
	Kind string `json:"kind"`
	// Reason says how the rows can change its outcome.
	Reason string `json:"reason"`
	// SQL is the start of the statement, on one line.
	SQL string `json:"sql"`
}

// unproven lists the statements of p's groups whose outcome depends on the
// rows.
func unproven(p *Plan) []Unproven {
	var out []Unproven
	for _, g := range p.Groups {
		for _, s := range g.Steps {
			stmts, err := splitStatements(p.Driver, s.SQL)
			if err != nil {
				continue
			}
			for _, st := range stmts {
				kind, reason := dataDependent(p.Driver, st.words)
				if kind == "" {
					continue
				}
				out = append(out, Unproven{Application: s.Application, File: s.Name, Statement: st.Index, Line: st.Line,
					Kind: kind, Reason: reason, SQL: excerpt(st.SQL, 120)})
			}
		}
	}
	return out
}

// dataDependent returns what makes the statement of words w (its
// statement.words) depend on the rows, and how; "" when it does not.
func dataDependent(driver string, w []string) (kind, reason string) {
	if len(w) == 0 {
		return "", ""
	}
	has := func(seq ...string) bool { return indexSeq(w, seq...) >= 0 }
	verb := w[0]
	if verb == "WITH" || verb == "EXPLAIN" { // a data-modifying CTE or EXPLAIN ANALYZE: find the verb
		for _, v := range []string{"UPDATE", "DELETE", "INSERT", "MERGE"} {
			if has(v) {
				verb = v
				break
			}
		}
	}
	switch {
	case verb == "UPDATE":
		return "UPDATE", "changes the existing rows: constraints, casts and triggers may fail on them, and how many rows it changes is unknown"
	case verb == "DELETE":
		return "DELETE", "removes existing rows: foreign keys that reference them may refuse, and how many rows it removes is unknown"
	case verb == "MERGE":
		return "MERGE", "reads and changes the existing rows: constraints may fail on them"
	case verb == "INSERT" && has("SELECT"):
		return "INSERT … SELECT", "copies existing rows: unique, not-null, check and foreign-key constraints may fail on them"
	case verb == "INSERT" && has("ON", "CONFLICT") || verb == "REPLACE" || verb == "INSERT" && len(w) > 2 && w[1] == "OR":
		return "INSERT … ON CONFLICT", "its outcome depends on the rows already there"
	case verb == "CREATE" && has("UNIQUE") && has("INDEX") && indexSeq(w, "UNIQUE") < indexSeq(w, "INDEX"):
		return "CREATE UNIQUE INDEX", "fails when existing rows hold duplicate values"
	case verb == "ALTER" && len(w) > 1 && w[1] == "TABLE":
		switch {
		case has("SET", "NOT", "NULL"):
			return "ALTER TABLE … SET NOT NULL", "fails when an existing row holds NULL"
		case has("VALIDATE", "CONSTRAINT"):
			return "ALTER TABLE … VALIDATE CONSTRAINT", "fails when an existing row breaks the constraint"
		case has("NOT", "VALID"):
			return "", ""
		case has("ADD", "CONSTRAINT") || has("ADD", "PRIMARY") || has("ADD", "UNIQUE") || has("ADD", "FOREIGN") ||
			has("ADD", "CHECK") || has("ADD", "EXCLUDE"):
			return "ALTER TABLE … ADD CONSTRAINT", "fails when existing rows break the new constraint"
		case has("TYPE") && (has("ALTER", "COLUMN") || has("SET", "DATA", "TYPE") || driver == DriverPostgres && has("ALTER")):
			return "ALTER TABLE … ALTER COLUMN … TYPE", "fails when an existing value cannot be converted"
		case has("ADD") && has("NOT", "NULL") && !has("DEFAULT"):
			return "ALTER TABLE … ADD … NOT NULL", "fails when the table has rows (a NOT NULL column needs a DEFAULT for them)"
		case has("REFERENCES"):
			return "ALTER TABLE … REFERENCES", "fails when existing rows reference rows that do not exist"
		}
	}
	return "", ""
}

// indexSeq returns where seq starts in w, or -1.
func indexSeq(w []string, seq ...string) int {
	for i := 0; i+len(seq) <= len(w); i++ {
		if slices.Equal(w[i:i+len(seq)], seq) {
			return i
		}
	}
	return -1
}

// excerpt returns s on one line, cut to at most max bytes (at a rune
// boundary) with "…" when cut.
func excerpt(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8Start(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }
