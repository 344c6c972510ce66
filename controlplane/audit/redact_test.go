package audit

import (
	"strings"
	"testing"

	"github.com/cutover-dev/cutover/pkg/token"
)

func TestRedact(t *testing.T) {
	tok := token.New()
	join := tok
	join.CAHash = strings.Repeat("ab", 32)
	tests := []struct{ in, want string }{
		{"", ""},
		{"prepare d-1", "prepare d-1"},
		{"method /cutover.v1.AdminService/CreateToken", "method /cutover.v1.AdminService/CreateToken"},
		{"token " + tok.Operator() + " used", "token cutover." + tok.ID + ".*** used"},
		{"Bearer " + tok.Operator(), "Bearer cutover." + tok.ID + ".***"},
		{"join=" + join.Join() + ",uses=1", "join=cutoverjoin." + tok.ID + ".***,uses=1"},
		{"two: " + tok.Operator() + " " + tok.Operator(), "two: cutover." + tok.ID + ".*** cutover." + tok.ID + ".***"},
		{"short secret cutover." + tok.ID + ".abc", "short secret cutover." + tok.ID + ".***"},
		{"glued x" + tok.Operator(), "glued xcutover." + tok.ID + ".***"},
		{"id only cutover." + tok.ID, "id only cutover." + tok.ID},
		{`dsn "postgres://app:s3cr@t@db.internal:5432/app?sslmode=require"`, `dsn "postgres://app:***@db.internal:5432/app?sslmode=require"`},
		{"dsn=postgres://app:secret@db/app other", "dsn=postgres://app:***@db/app other"},
		{"dsn=postgres://app@db/app", "dsn=postgres://app@db/app"},
		{"dsn=postgres://db/app?user=app&password=secret&sslmode=disable", "dsn=postgres://db/app?user=app&password=***&sslmode=disable"},
		{"dsn='host=db user=app password=secret dbname=app'", "dsn='host=db user=app password=*** dbname=app'"},
		{`dsn="host=db password=secret"`, `dsn="host=db password=***"`},
		{"host=db password = 'se cret\\' x' dbname=app", "host=db password = *** dbname=app"},
		{"PASSWORD=hunter2", "PASSWORD=***"},
		{"db_password=hunter2 passwd=x", "db_password=*** passwd=***"},
		{`{"dsn":"x","password":"hunter2"}`, `{"dsn":"x","password":"***"}`},
		{"https://example.com/path", "https://example.com/path"},
	}
	for _, tt := range tests {
		got := Redact(tt.in)
		if got != tt.want {
			t.Errorf("Redact(%q)\n = %q\nwant %q", tt.in, got, tt.want)
		}
		if again := Redact(got); again != got {
			t.Errorf("Redact is not idempotent on %q: %q", got, again)
		}
		for _, secret := range []string{tok.Secret, "hunter2", "s3cr@t", "se cret"} {
			if strings.Contains(got, secret) {
				t.Errorf("Redact(%q) = %q keeps %q", tt.in, got, secret)
			}
		}
	}
}

func FuzzRedact(f *testing.F) {
	tok := token.New()
	f.Add("x " + tok.Operator() + " y")
	f.Add("postgres://a:b@c/d password=e")
	f.Fuzz(func(t *testing.T, s string) {
		got := Redact(s)
		if Redact(got) != got {
			t.Fatalf("Redact(%q) = %q, which Redact changes again", s, got)
		}
		// A token placed anywhere in s is hidden.
		in := s + " " + tok.Operator() + " " + s
		if strings.Contains(Redact(in), tok.Secret) {
			t.Fatalf("a token's secret survives Redact in %q", in)
		}
	})
}
