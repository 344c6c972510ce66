package migrate

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/cutover-dev/cutover/pkg/errkind"
)

func TestRedactDSN(t *testing.T) {
	cases := []struct{ in, want string }{
		{"postgres://cutover:s3cret@db.example:5432/app?sslmode=disable", "postgres://cutover:xxxxx@db.example:5432/app?sslmode=disable"},
		{"postgresql://u:p%40ss@h/db", "postgresql://u:xxxxx@h/db"},
		{"postgres://u:p@ss@h/db", "postgres://u:xxxxx@h/db"}, // unescaped @ in the password
		{"postgres://u@h/db", "postgres://u@h/db"},
		{"postgres://h/db?user=u&password=s3cret&sslmode=require", "postgres://h/db?user=u&password=xxxxx&sslmode=require"},
		{"postgres://u:pw@h1:5432,h2:5433/db", "postgres://u:xxxxx@h1:5432,h2:5433/db"},
		{"host=localhost user=u password=s3cret dbname=app", "host=localhost user=u password=xxxxx dbname=app"},
		{"password=s3cret host=h", "password=xxxxx host=h"},
		{"host=h password = 'it''s s3cret' dbname=d", "host=h password = xxxxx dbname=d"},
		{`host=h password='a\' b' dbname=d`, "host=h password=xxxxx dbname=d"},
		{"host=h password='s3'cret dbname=d", "host=h password=xxxxx dbname=d"}, // text after the quote is the password's too
		{"host=h dbname=d", "host=h dbname=d"},
		{"host=h mypassword=x", "host=h mypassword=x"},
		{"/var/lib/app/app.db", "/var/lib/app/app.db"},
		{"file:/var/lib/app.db?_pragma=busy_timeout(100)", "file:/var/lib/app.db?_pragma=busy_timeout(100)"},
		{"", ""},
	}
	for _, tc := range cases {
		got := RedactDSN(tc.in)
		if got != tc.want {
			t.Errorf("RedactDSN(%q) = %q, want %q", tc.in, got, tc.want)
		}
		for _, secret := range []string{"s3cret", "p%40ss", "ss@h"} {
			if strings.Contains(tc.in, secret) && strings.Contains(got, secret) {
				t.Errorf("RedactDSN(%q) shows %q", tc.in, secret)
			}
		}
	}
}

func TestDBNeverShowsThePassword(t *testing.T) {
	db := DB{Driver: DriverPostgres, DSN: "postgres://u:s3cret@127.0.0.1:1/db?connect_timeout=1"}
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("migrating", "db", db)
	out := buf.String() + fmt.Sprintf("%v %+v %s", db, db, db)
	if strings.Contains(out, "s3cret") || !strings.Contains(out, "xxxxx") {
		t.Errorf("the password shows: %s", out)
	}
	// A connection failure does not show it either.
	_, err := Generate(ctxT(t), db, "dep-1", nil)
	if err == nil || strings.Contains(err.Error(), "s3cret") || !errors.Is(err, errkind.Unavailable) {
		t.Errorf("want Unavailable without the password, got %v", err)
	}
}

func TestValidate(t *testing.T) {
	cases := []struct {
		db DB
		ok bool
	}{
		{DB{Driver: "sqlite", DSN: "/tmp/x.db"}, true},
		{DB{Driver: "sqlite", DSN: "file:/tmp/x.db?_pragma=foreign_keys(1)"}, true},
		{DB{Driver: "postgres", DSN: "postgres://u:p@h/db"}, true},
		{DB{Driver: "postgres", DSN: "host=h user=u dbname=d"}, true},
		{DB{Driver: "mysql", DSN: "x"}, false},
		{DB{Driver: "", DSN: "x"}, false},
		{DB{Driver: "sqlite", DSN: ""}, false},
		{DB{Driver: "postgres", DSN: "  "}, false},
		{DB{Driver: "sqlite", DSN: ":memory:"}, false},
		{DB{Driver: "sqlite", DSN: "file:x?mode=memory"}, false},
		{DB{Driver: "postgres", DSN: "postgres://u:p@h:notaport/db"}, false},
		{DB{Driver: "sqlite", DSN: "/tmp/x.db", StatementTimeout: -1}, false},
	}
	for _, tc := range cases {
		err := tc.db.Validate()
		if tc.ok != (err == nil) || (err != nil && !errors.Is(err, errkind.InvalidArgument)) {
			t.Errorf("Validate(%v) = %v, want ok=%v", tc.db, err, tc.ok)
		}
		if err != nil && strings.Contains(err.Error(), "u:p@") {
			t.Errorf("Validate(%v) shows the password: %v", tc.db, err)
		}
	}
}

func TestSQLiteReadOnlyDSN(t *testing.T) {
	cases := []struct{ in, uri, path string }{
		{"/var/lib/a.db", "file:/var/lib/a.db?mode=ro", "/var/lib/a.db"},
		{"rel/a?b#c.db", "file:rel/a%3fb%23c.db?mode=ro", "rel/a?b#c.db"},
		{"file:/x/a.db?_pragma=foreign_keys(1)", "file:/x/a.db?_pragma=foreign_keys%281%29&mode=ro", "/x/a.db"},
		{"file:///x/a%20b.db", "file:/x/a b.db?mode=ro", "/x/a b.db"},
	}
	for _, tc := range cases {
		uri, path, err := sqliteReadOnlyDSN(tc.in)
		if err != nil || uri != tc.uri || path != tc.path {
			t.Errorf("sqliteReadOnlyDSN(%q) = %q, %q, %v; want %q, %q", tc.in, uri, path, err, tc.uri, tc.path)
		}
	}
}
