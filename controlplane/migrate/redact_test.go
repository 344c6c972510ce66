package migrate

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/cutover-dev/cutover/controlplane/migrate/migratetest"
	"github.com/cutover-dev/cutover/pkg/errkind"
)

// TestRedactInKeepsNames: a connection error keeps the user and database
// names, even when the password is one of them, and hides the password
// everywhere else.
func TestRedactInKeepsNames(t *testing.T) {
	for _, tc := range []struct{ dsn, msg, want string }{
		// The password is the user's name: every "app" may be the name, so
		// it shows (a password that is the user's name is no secret).
		{"postgres://app:app@db/appdb", "failed to connect to `user=app database=appdb`",
			"failed to connect to `user=app database=appdb`"},
		{"postgres://app:shop@db/shopdb", "`user=app database=shopdb`: shop", "`user=app database=shopdb`: xxxxx"},
		{"host=db user=cutover password=cutover dbname=shop", "failed to connect to `user=cutover database=shop`: for user \"cutover\"",
			"failed to connect to `user=cutover database=shop`: for user \"cutover\""},
		{"postgres://app:s3cret@db/app", "user=app database=app: bad s3cret", "user=app database=app: bad xxxxx"},
		{"postgres://app:s3cret@db/app", "dsn postgres://app:s3cret@db/app", "dsn postgres://app:xxxxx@db/app"},
	} {
		if got := redactIn(tc.msg, tc.dsn); got != tc.want {
			t.Errorf("redactIn(%q, %q)\n got %q\nwant %q", tc.msg, tc.dsn, got, tc.want)
		}
	}
}

// TestWrongPasswordShowsNames: a real server refusing a wrong password
// gives an error naming the user and the database, without the password.
func TestWrongPasswordShowsNames(t *testing.T) {
	admin := migratetest.RequirePostgres(t)
	u, err := url.Parse(admin)
	if err != nil || u.User == nil {
		t.Skipf("%s is not a URL with a user", migratetest.PostgresEnv)
	}
	u.User = url.UserPassword(u.User.Username(), "wr0ng-pw")
	db := DB{Driver: DriverPostgres, DSN: u.String()}
	_, err = Generate(ctxT(t), db, "dep-1", nil)
	if !errors.Is(err, errkind.Unavailable) {
		t.Fatalf("want Unavailable, got %v", err)
	}
	if strings.Contains(err.Error(), "wr0ng-pw") {
		t.Errorf("the password shows: %v", err)
	}
	mentions(t, err, "user="+u.User.Username(), "database="+strings.TrimPrefix(u.Path, "/"), "password authentication failed")
}
