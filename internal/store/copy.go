package store

import (
	"context"
	"errors"
	"fmt"

	"entgo.io/ent/dialect"
	"github.com/lib/pq"
)

// ErrNoCopy is CopyIn's answer on a database without a bulk-load protocol
// (SQLite): the caller inserts the rows its usual way.
var ErrNoCopy = errors.New("store: COPY needs PostgreSQL")

// CopyIn appends rows to table with PostgreSQL's COPY, in a transaction of
// its own, and counts as one statement. Each row holds a value per column,
// nil for NULL. It is for append-only rows written in bulk, where an INSERT
// of thousands of rows costs PostgreSQL a bound parameter per value and
// Go an ent builder per row; it runs none of ent's hooks, so a table that
// has hooks on create must not be written through it.
func (s *Store) CopyIn(ctx context.Context, table string, columns []string, rows [][]any) (err error) {
	if s.Dialect != dialect.Postgres {
		return ErrNoCopy
	}
	s.statements.Add(1)
	tx, err := s.DB.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("copy into %s: %w", table, err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	stmt, err := tx.PrepareContext(ctx, pq.CopyIn(table, columns...))
	if err != nil {
		return fmt.Errorf("copy into %s: %w", table, err)
	}
	for _, row := range rows {
		if _, err = stmt.ExecContext(ctx, row...); err != nil {
			_ = stmt.Close()
			return fmt.Errorf("copy into %s: %w", table, err)
		}
	}
	if _, err = stmt.ExecContext(ctx); err != nil {
		_ = stmt.Close()
		return fmt.Errorf("copy into %s: %w", table, err)
	}
	if err = stmt.Close(); err != nil {
		return fmt.Errorf("copy into %s: %w", table, err)
	}
	if err = tx.Commit(); err != nil {
		return fmt.Errorf("copy into %s: %w", table, err)
	}
	return nil
}
