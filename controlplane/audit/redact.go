package audit

import "regexp"

// The patterns Redact replaces. Token ids are kept (they are public: lists
// and the log name tokens by them); secrets are not. The secret patterns
// take any length, so that a mistyped or truncated secret is hidden too.
var (
	// cutoverjoin.<16 hex>.<secret>[.<64 hex>]
	joinTokenRE = regexp.MustCompile(`cutoverjoin\.([0-9a-fA-F]{16})\.[A-Za-z0-9_-]+(?:\.[0-9a-fA-F]+)?`)
	// cutover.<16 hex>.<secret>
	operatorTokenRE = regexp.MustCompile(`cutover\.([0-9a-fA-F]{16})\.[A-Za-z0-9_-]+`)
	// scheme://user:password@host: the password runs to the last "@"
	// before a space or a quote (a password may hold an "@").
	urlPasswordRE = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://[^:@/\s"']*:)[^\s"']*@`)
	// password=secret, password = 'se cret', "password": "secret", and
	// ?password=… in a URL query; also db_password=…, passwd=….
	kvPasswordRE   = regexp.MustCompile(`(?i)(passw(?:or)?d\s*=\s*)(?:'(?:[^'\\]|\\.)*'?|"(?:[^"\\]|\\.)*"?|[^\s&#,;'"]*)`)
	jsonPasswordRE = regexp.MustCompile(`(?i)("[^"]*passw(?:or)?d"\s*:\s*)"(?:[^"\\]|\\.)*"?`)
)

// Redact returns s with secrets replaced: an operator token by
// "cutover.<id>.***", a join token by "cutoverjoin.<id>.***", the password
// of a URL (postgres://user:***@host/db) and the value of a password=…
// setting (libpq key=value, URL query, JSON) by "***". The rest of s is
// kept as written. Redact(Redact(s)) == Redact(s).
func Redact(s string) string {
	s = joinTokenRE.ReplaceAllString(s, "cutoverjoin.${1}.***")
	s = operatorTokenRE.ReplaceAllString(s, "cutover.${1}.***")
	s = urlPasswordRE.ReplaceAllString(s, "${1}***@")
	s = kvPasswordRE.ReplaceAllString(s, "${1}***")
	s = jsonPasswordRE.ReplaceAllString(s, `${1}"***"`)
	return s
}
