package deployment

import (
	"fmt"
	"testing"

	"github.com/cutover-dev/cutover/controlplane/migrate"
	"github.com/cutover-dev/cutover/pkg/errkind"
)

func TestSQLUnchanged(t *testing.T) {
	plan := &migrate.Plan{Pending: []migrate.Pending{
		{Application: "hello", Version: 1, Name: "0001_a.up.sql"},
		{Application: "hello", Version: 2, Name: "0002_index.up.sql", NoTransaction: true},
	}}
	applied := &migrate.Result{Applied: []migrate.Pending{plan.Pending[0]}}
	tests := []struct {
		name string
		res  *migrate.Result
		err  error
		want bool
	}{
		{"unreachable", &migrate.Result{}, fmt.Errorf("database: connection refused: %w", errkind.Unavailable), true},
		{"lock not had in time", &migrate.Result{}, fmt.Errorf("migration lock: %w", errkind.DeadlineExceeded), true},
		{"statement refused in a transaction", &migrate.Result{}, &migrate.StatementError{Application: "hello", Version: 1, File: "0001_a.up.sql"}, true},
		{"statement refused outside a transaction", &migrate.Result{}, &migrate.StatementError{Application: "hello", Version: 2, File: "0002_index.up.sql"}, false},
		{"after a group committed", applied, fmt.Errorf("down: %w", errkind.Unavailable), false},
		{"drift", &migrate.Result{}, fmt.Errorf("the database changed since prepare: x; nothing was run: prepare again: %w", errkind.FailedPrecondition), false},
		{"a bad plan", &migrate.Result{}, fmt.Errorf("plan: %w", errkind.InvalidArgument), false},
		{"no result", nil, fmt.Errorf("down: %w", errkind.Unavailable), true},
	}
	for _, tt := range tests {
		if got := sqlUnchanged(plan, tt.res, tt.err); got != tt.want {
			t.Errorf("%s: sqlUnchanged = %v, want %v", tt.name, got, tt.want)
		}
	}
}
