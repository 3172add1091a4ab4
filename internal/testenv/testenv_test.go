package testenv

import (
	"context"
	"database/sql"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/hmis-dev/hmis/internal/globalid"
)

// TestSweepDropsWhatEndedProcessesLeft: the sweep drops a template nobody
// holds and the test databases copied from it, and keeps a template whose
// process still holds its lock, with its databases.
func TestSweepDropsWhatEndedProcessesLeft(t *testing.T) {
	if !UsingPostgres() {
		t.Skip("templates are PostgreSQL's")
	}
	ctx := context.Background()
	admin, err := sql.Open("postgres", os.Getenv("HMIS_TEST_DATABASE_URL"))
	if err != nil {
		t.Fatal(err)
	}
	// Closed after the cleanup below has dropped the databases: cleanups
	// run last first, and after the test's deferred calls.
	t.Cleanup(func() { admin.Close() })
	newName := func() string { return templatePrefix + strings.ToLower(globalid.New("x")[2:]) }
	ended, alive := newName(), newName()
	endedLeft, aliveLeft := testDatabasePrefix(ended)+"left", testDatabasePrefix(alive)+"left"
	all := []string{ended, alive, endedLeft, aliveLeft}
	// Locked before it exists, as migratedTemplate does, so that no other
	// test process's sweep takes it for abandoned.
	holder, err := admin.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	if _, err := holder.ExecContext(ctx, "SELECT pg_advisory_lock($1)", templateLock(alive)); err != nil {
		t.Fatal(err)
	}
	for _, name := range all {
		if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, name := range all {
			admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
		}
	})
	sweeper, err := admin.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer sweeper.Close()
	if err := dropAbandonedTemplates(ctx, sweeper); err != nil {
		t.Fatal(err)
	}
	left, err := databasesNamed(ctx, sweeper, "hmis_t")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{ended, endedLeft} {
		if slices.Contains(left, name) {
			t.Errorf("%s, left by an ended process, is still there", name)
		}
	}
	for _, name := range []string{alive, aliveLeft} {
		if !slices.Contains(left, name) {
			t.Errorf("%s, of a process still running, was dropped", name)
		}
	}
}
