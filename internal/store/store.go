// Package store opens the database behind ent — PostgreSQL through lib/pq in
// production, an SQLite file through a pure-Go driver by default — and gives
// domain code transactions and row locks that mean the same on both.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"
	_ "github.com/lib/pq"  // PostgreSQL driver, registered as "postgres".
	_ "modernc.org/sqlite" // Pure-Go SQLite driver, registered as "sqlite".

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/internal/crypt"
)

// Store is an open database: the ent client and what is needed to run it.
type Store struct {
	Client     *ent.Client
	DB         *sql.DB
	Dialect    string
	statements *atomic.Int64
	onEvents   atomic.Pointer[func()]
	keys       atomic.Pointer[crypt.Keyring]
	stopWatch  context.CancelFunc
}

// Open connects to databaseURL (postgres://… or postgresql://…) or, when it is
// empty, to the SQLite file at sqlitePath.
func Open(databaseURL, sqlitePath string) (*Store, error) {
	var (
		db   *sql.DB
		dial string
		err  error
	)
	switch {
	case strings.HasPrefix(databaseURL, "postgres://"), strings.HasPrefix(databaseURL, "postgresql://"):
		dial = dialect.Postgres
		db, err = sql.Open("postgres", databaseURL)
		if err != nil {
			return nil, fmt.Errorf("open postgres: %w", err)
		}
		db.SetMaxOpenConns(25)
		db.SetMaxIdleConns(25)
		db.SetConnMaxIdleTime(5 * time.Minute)
	case databaseURL == "":
		dial = dialect.SQLite
		db, err = sql.Open("sqlite", sqliteDSN(sqlitePath))
		if err != nil {
			return nil, fmt.Errorf("open sqlite: %w", err)
		}
		// SQLite has one writer at a time; a few connections let reads run
		// beside it in WAL mode without piling up busy waits.
		db.SetMaxOpenConns(8)
	default:
		return nil, errors.New("database URL must start with postgres:// (leave it empty for the embedded SQLite file)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to %s database: %w", dial, err)
	}
	statements := new(atomic.Int64)
	client := ent.NewClient(ent.Driver(countingDriver{Driver: entsql.OpenDB(dial, db), n: statements}))
	st := &Store{Client: client, DB: db, Dialect: dial, statements: statements}
	// Encrypted fields are refused until UnlockKeys: nothing is ever
	// written in clear for want of keys.
	crypt.Install(client, st.Keys)
	return st, nil
}

// sqliteDSN turns a file path into a DSN with the settings HMIS relies on:
// foreign keys on, WAL so readers do not block the writer, a busy timeout
// instead of immediate SQLITE_BUSY errors, and BEGIN IMMEDIATE so a
// transaction takes the write lock up front. The last is what makes a
// check-then-insert (double booking, stock) safe on SQLite: two such
// transactions run one after the other, never interleaved.
func sqliteDSN(path string) string {
	q := url.Values{}
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "busy_timeout(15000)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Set("_txlock", "immediate")
	q.Set("_time_format", "sqlite")
	return "file:" + path + "?" + q.Encode()
}

// Migrate brings the schema up to date with ent/schema.
func (s *Store) Migrate(ctx context.Context) error {
	if err := s.Client.Schema.Create(ctx); err != nil {
		return fmt.Errorf("migrate schema: %w", err)
	}
	return nil
}

// UnlockKeys loads the database's data and index keysets, unwrapping them
// with kek (and creating them on first use), after Migrate.
func (s *Store) UnlockKeys(ctx context.Context, kek crypt.KEK) (*crypt.Keyring, error) {
	kr, err := crypt.Open(ctx, s.DB, s.Dialect, kek)
	if err != nil {
		return nil, err
	}
	s.keys.Store(kr)
	watch, stop := context.WithCancel(context.Background())
	s.stopWatch = stop
	go kr.Watch(watch)
	return kr, nil
}

// Keys is the keyring encrypted fields are read and written with; nil
// before UnlockKeys.
func (s *Store) Keys() *crypt.Keyring { return s.keys.Load() }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.DB.PingContext(ctx) }

// Close closes the client and its connections.
func (s *Store) Close() error {
	if s.stopWatch != nil {
		s.stopWatch()
	}
	return s.Client.Close()
}
