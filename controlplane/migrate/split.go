package migrate

import (
	"fmt"
	"strings"
)

// statement is one statement of a migration file.
type statement struct {
	// SQL is the statement's text, from its first token to (not including)
	// the ';' that ends it.
	SQL string
	// Index is its 1-based position among the file's statements.
	Index int
	// Line is the 1-based line of the file where it starts.
	Line int
	// Terminated is false for a last statement without a ';'.
	Terminated bool
	// words are its keywords, identifiers and numbers, upper-cased: its
	// words outside strings, quoted identifiers and comments.
	words []string
}

// word returns its i-th word (from 0), or "".
func (s statement) word(i int) string {
	if i < len(s.words) {
		return s.words[i]
	}
	return ""
}

// transactionControl reports whether s begins, ends or aborts a transaction.
func (s statement) transactionControl() bool {
	switch s.word(0) {
	case "BEGIN", "COMMIT", "END", "ABORT":
		return true
	case "ROLLBACK":
		return s.word(1) != "TO"
	case "START":
		return s.word(1) == "TRANSACTION"
	}
	return false
}

// splitStatements splits sql into statements at the ';' that are not inside
// a quoted string or identifier, a comment, a PostgreSQL dollar-quoted
// string, or a block body (SQLite's CREATE TRIGGER … BEGIN … END, SQL's
// BEGIN ATOMIC … END). Statements that hold only comments are dropped. It
// fails for an unterminated string, identifier or comment.
func splitStatements(driver, sql string) ([]statement, error) {
	pg := driver == DriverPostgres
	var (
		out       []statement
		cur       statement
		start     = -1 // offset of the current statement's first token
		trigger   bool // the statement is CREATE … TRIGGER
		depth     int  // open BEGIN/CASE blocks inside a body
		parens    int  // open parentheses
		prevWord  string
		wordEnd   = -1 // offset just past the last word
		line      = 1
		i         int
		n         = len(sql)
		errorLine int
	)
	fail := func(what string) error {
		return fmt.Errorf("line %d: unterminated %s", errorLine, what)
	}
	mark := func() {
		if start < 0 {
			start, cur = i, statement{Line: line}
		}
	}
	// skipTo advances i past the first occurrence of end from i, counting
	// lines; it reports whether end was found.
	skipTo := func(end string) bool {
		k := strings.Index(sql[i:], end)
		if k < 0 {
			line += strings.Count(sql[i:], "\n")
			i = n
			return false
		}
		line += strings.Count(sql[i:i+k+len(end)], "\n")
		i += k + len(end)
		return true
	}
	for i < n {
		c := sql[i]
		switch {
		case c == '\n':
			line++
			i++
		case c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v':
			i++
		case c == '-' && i+1 < n && sql[i+1] == '-':
			if k := strings.IndexByte(sql[i:], '\n'); k >= 0 {
				i += k
			} else {
				i = n
			}
		case c == '/' && i+1 < n && sql[i+1] == '*':
			errorLine = line
			level := 0
			for i < n {
				if sql[i] == '/' && i+1 < n && sql[i+1] == '*' && (pg || level == 0) {
					level++
					i += 2
				} else if sql[i] == '*' && i+1 < n && sql[i+1] == '/' {
					level--
					i += 2
					if level == 0 {
						break
					}
				} else {
					if sql[i] == '\n' {
						line++
					}
					i++
				}
			}
			if level != 0 {
				return nil, fail("/* comment")
			}
		case c == '\'':
			mark()
			errorLine = line
			backslash := pg && wordEnd == i && (prevWord == "E")
			i++
			closed := false
			for i < n {
				switch {
				case backslash && sql[i] == '\\' && i+1 < n:
					if sql[i+1] == '\n' {
						line++
					}
					i += 2
					continue
				case sql[i] == '\'' && i+1 < n && sql[i+1] == '\'':
					i += 2
					continue
				case sql[i] == '\'':
					closed = true
				case sql[i] == '\n':
					line++
				}
				i++
				if closed {
					break
				}
			}
			if !closed {
				return nil, fail("string")
			}
		case c == '"' || (!pg && c == '`') || (!pg && c == '['):
			mark()
			errorLine = line
			endc := string(c)
			if c == '[' {
				endc = "]"
			}
			i++
			for {
				if !skipTo(endc) {
					return nil, fail("quoted identifier")
				}
				if c == '[' || i >= n || sql[i] != c { // "" and `` escape themselves
					break
				}
				i++
			}
		case pg && c == '$' && wordEnd != i:
			mark()
			tag := dollarTag(sql[i:])
			if tag == "" { // a parameter such as $1, or a stray '$'
				i++
				continue
			}
			errorLine = line
			i += len(tag)
			if !skipTo(tag) {
				return nil, fail("dollar-quoted string " + tag)
			}
		case isWordByte(c):
			mark()
			j := i
			for j < n && (isWordByte(sql[j]) || (pg && sql[j] == '$')) {
				j++
			}
			w := strings.ToUpper(sql[i:j])
			cur.words = append(cur.words, w)
			switch {
			case w == "TRIGGER" && len(cur.words) <= 4 && cur.words[0] == "CREATE":
				trigger = true
			case w == "BEGIN" && trigger && depth == 0:
				depth++
			case w == "ATOMIC" && prevWord == "BEGIN" && !trigger:
				depth++
			case w == "CASE" && depth > 0:
				depth++
			case w == "END" && depth > 0:
				depth--
			}
			prevWord, wordEnd, i = w, j, j
		case c == '(' || c == ')':
			mark()
			if c == '(' {
				parens++
			} else if parens > 0 {
				parens--
			}
			i++
		case c == ';' && depth == 0 && parens == 0:
			if start >= 0 {
				cur.SQL = sql[start:i]
				cur.Terminated = true
				cur.Index = len(out) + 1
				out = append(out, cur)
			}
			start, trigger, prevWord = -1, false, ""
			i++
		default:
			mark()
			i++
		}
	}
	if start >= 0 {
		cur.SQL = strings.TrimRight(sql[start:], " \t\r\n")
		cur.Index = len(out) + 1
		out = append(out, cur)
	}
	return out, nil
}

// dollarTag returns the $tag$ that s starts with, or "".
func dollarTag(s string) string {
	for k := 1; k < len(s); k++ {
		c := s[k]
		if c == '$' {
			return s[:k+1]
		}
		if !(c == '_' || c >= 0x80 || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (k > 1 && c >= '0' && c <= '9')) {
			return ""
		}
	}
	return ""
}

// isWordByte reports whether c can be part of an identifier, keyword or
// number.
func isWordByte(c byte) bool {
	return c == '_' || c >= 0x80 || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
}
