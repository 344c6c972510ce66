package migrate_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cutover-dev/cutover/controlplane/migrate"
)

// Generate renders the script; Execute runs it.
func ExampleGenerate() {
	dir, _ := os.MkdirTemp("", "migrate-example")
	defer os.RemoveAll(dir)
	db := migrate.DB{Driver: migrate.DriverSQLite, DSN: filepath.Join(dir, "app.db")}
	users, _ := migrate.ParseFile("0001_users.up.sql", []byte("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);\n"))
	index, _ := migrate.ParseFile("0002_users_name.up.sql", []byte(migrate.NoTransactionMarker+"\nCREATE INDEX users_name ON users (name);\n"))

	ctx := context.Background()
	plan, err := migrate.Generate(ctx, db, "d-42", []migrate.AppFiles{{Application: "hello", Files: []migrate.File{users, index}}})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Print(plan.Script)
	res, err := migrate.Execute(ctx, db, plan)
	fmt.Println("applied:", len(res.Applied), err)
	// Output:
	// -- cutover migration script for deployment d-42 (sqlite): 2 migration(s) in 2 group(s).
	// -- Made from the bookkeeping rows with digest e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855.
	// -- Before group 1, cutover takes the migration lock (an flock on <database>.cutover-lock),
	// -- sets busy_timeout to lock_timeout (statement_timeout bounds each statement),
	// -- creates cutover_schema_migrations if it is missing, and checks that its rows
	// -- still have that digest; if they do not, nothing below runs.
	//
	// -- Group 1 of 2: one transaction, 1 migration(s).
	// BEGIN IMMEDIATE;
	//
	// -- ===== hello: 0001_users.up.sql (migration 1, sha256 d09c49c4b061797afb57cc72d1d1b9909f272723e3e296ffc6f055c2c16f3aff)
	// CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);
	// INSERT INTO cutover_schema_migrations (application, version, name, checksum, applied_at, deployment_id) VALUES ('hello', 1, '0001_users.up.sql', 'd09c49c4b061797afb57cc72d1d1b9909f272723e3e296ffc6f055c2c16f3aff', CURRENT_TIMESTAMP, 'd-42');
	//
	// COMMIT;
	//
	// -- Group 2 of 2: no transaction: 0002_users_name.up.sql runs alone, then its bookkeeping row is written.
	//
	// -- ===== hello: 0002_users_name.up.sql (migration 2, sha256 d352d7f4a44d15fe10325b2314508e83c0c15d832f0da91f8f8f5c22c5fdeeb8)
	// -- cutover:no-transaction
	// CREATE INDEX users_name ON users (name);
	// INSERT INTO cutover_schema_migrations (application, version, name, checksum, applied_at, deployment_id) VALUES ('hello', 2, '0002_users_name.up.sql', 'd352d7f4a44d15fe10325b2314508e83c0c15d832f0da91f8f8f5c22c5fdeeb8', CURRENT_TIMESTAMP, 'd-42');
	// applied: 2 <nil>
}
