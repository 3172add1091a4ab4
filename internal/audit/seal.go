package audit

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"entgo.io/ent/dialect"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/auditevent"
)

// sealLockKey is the PostgreSQL session advisory lock the sealing leader
// holds for as long as it lives ("hmis-sea" in ASCII).
const sealLockKey int64 = 0x686d69732d736561

// sealer gives unsealed rows their seq and hash. Exactly one sealer works
// on a database at a time: on PostgreSQL the process holding sealLockKey on
// a connection of its own, which it keeps until it stops or the
// connection dies (the others try again on every round); on SQLite
// whoever holds the write lock, which a sealing transaction takes first.
// Either way the unique seq and the "still unsealed" condition of the
// UPDATE make a second sealer fail rather than fork the chain.
type sealer struct {
	t *Trail

	mu   sync.Mutex // one round at a time in this process
	lead *sql.Conn  // PostgreSQL: the connection holding sealLockKey
	// positionsFixed: rows of earlier versions carry position 0 until
	// their seq is copied there, once.
	positionsFixed bool
	// The newest head sealed here and not yet in a checkpoint.
	headSeq        int64
	headHash       string
	headPending    bool
	lastCheckpoint time.Time

	// lastWrite is when rows were last appended (Unix nanoseconds) and
	// lastRound when the loop last sealed.
	lastWrite atomic.Int64
	lastRound time.Time

	pokes   chan struct{}
	quit    chan struct{}
	stopped chan struct{}
	started bool
}

func (s *sealer) init(t *Trail) {
	s.t = t
	s.pokes = make(chan struct{}, 1)
	s.quit = make(chan struct{})
	s.stopped = make(chan struct{})
}

// Start runs the background sealer until Close: soon after appends pause
// (see sealQuiet), and every SealInterval.
func (t *Trail) Start() {
	s := &t.sealer
	s.mu.Lock()
	if s.started {
		s.mu.Unlock()
		return
	}
	s.started = true
	s.mu.Unlock()
	go s.loop()
}

// Sealing waits while rows keep coming — a burst such as one alert sent
// to thousands of dashboards, whose deliveries the sealer would otherwise
// compete with for the database and the CPU — until writes pause for
// sealQuiet, or for at most sealMostDelay under a load that never pauses.
// A row is durable and keyed (entry_mac) from its INSERT on; only its place
// in the chain waits. The pause is this process's: where another process
// serves the burst, the leader seals beside it as it did before.
const (
	sealQuiet     = 50 * time.Millisecond
	sealMostDelay = time.Second
)

func (s *sealer) poke() {
	s.lastWrite.Store(time.Now().UnixNano())
	select {
	case s.pokes <- struct{}{}:
	default:
	}
}

func (s *sealer) loop() {
	defer close(s.stopped)
	tick := time.NewTicker(s.t.opts.SealInterval)
	defer tick.Stop()
	failing := false
	// pause fires when the pause a skipped round waits for is over.
	pause := time.NewTimer(time.Hour)
	pause.Stop()
	defer pause.Stop()
	for {
		select {
		case <-s.quit:
			return
		case <-tick.C:
		case <-s.pokes:
		case <-pause.C:
		}
		now := time.Now()
		if quiet := now.Sub(time.Unix(0, s.lastWrite.Load())); quiet < sealQuiet && now.Sub(s.lastRound) < sealMostDelay {
			pause.Reset(min(sealQuiet-quiet, sealMostDelay-now.Sub(s.lastRound)))
			continue
		}
		s.lastRound = now
		_, err := s.round(context.Background(), false)
		switch {
		case err != nil && !failing:
			s.t.log.Error("audit sealing failed; rows stay unsealed until it succeeds", "err", err)
			failing = true
		case err == nil && failing:
			s.t.log.Info("audit sealing works again")
			failing = false
		}
	}
}

// stop ends the background loop, seals what is left and lets another
// process lead. A trail whose sealer was never started leaves sealing to
// whoever runs one.
func (s *sealer) stop(ctx context.Context) error {
	s.mu.Lock()
	started := s.started
	s.mu.Unlock()
	var err error
	// A trail that only verifies, or whose sealing a test drives with
	// Seal, seals nothing more.
	if started {
		close(s.quit)
		<-s.stopped
		if _, err = s.round(ctx, true); errors.Is(err, errNotLeader) {
			err = nil // the leader seals them
		}
	}
	s.mu.Lock()
	s.release()
	s.mu.Unlock()
	return err
}

// Seal seals every row appended before it was called and writes a
// checkpoint, and returns how many rows it sealed itself. Where another
// process leads sealing, it waits for that one to seal them. Tests use it
// to read a settled chain; the server leaves sealing to Start.
func (t *Trail) Seal(ctx context.Context) (int, error) {
	s := &t.sealer
	mark := unsealedBase + time.Now().UnixMicro()
	if last := t.writer.highWater(); last > mark {
		mark = last
	}
	for {
		n, err := s.round(ctx, true)
		if !errors.Is(err, errNotLeader) {
			return n, err
		}
		left, err := t.unsealedUpTo(ctx, mark)
		if err != nil || left == 0 {
			return 0, err
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("audit: seal: waiting for the sealing process: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

var errNotLeader = errors.New("another process seals the audit trail")

// round seals all unsealed rows, batch by batch, if this process leads,
// and writes a checkpoint when one is due (always with force).
func (s *sealer) round(ctx context.Context, force bool) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.takeLead(ctx); err != nil {
		return 0, err
	}
	total := 0
	for {
		n, err := s.sealBatch(ctx)
		total += n
		if err != nil {
			s.release() // a broken connection must not keep the lock
			return total, err
		}
		if n < s.t.batch {
			break
		}
	}
	if s.headPending && (force || time.Since(s.lastCheckpoint) >= s.t.opts.CheckpointInterval) {
		if err := s.checkpoint(); err != nil {
			return total, err
		}
	}
	return total, nil
}

func (s *sealer) takeLead(ctx context.Context) error {
	if s.t.st.Dialect != dialect.Postgres || s.lead != nil {
		return nil
	}
	conn, err := s.t.st.DB.Conn(ctx)
	if err != nil {
		return fmt.Errorf("audit: sealer connection: %w", err)
	}
	var got bool
	if err := conn.QueryRowContext(ctx, "SELECT pg_try_advisory_lock($1)", sealLockKey).Scan(&got); err != nil {
		discard(conn)
		return fmt.Errorf("audit: take the sealer lock: %w", err)
	}
	if !got {
		conn.Close()
		return errNotLeader
	}
	s.lead = conn
	return nil
}

// release gives up leadership. The lock lives as long as the session, so
// the connection is closed rather than returned to the pool with it.
func (s *sealer) release() {
	if s.lead != nil {
		discard(s.lead)
		s.lead = nil
	}
}

func discard(conn *sql.Conn) {
	_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	conn.Close()
}

type sqlTx interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// sealBatch seals up to t.batch of the oldest unsealed rows in one
// transaction. It uses its own SQL on the store's connections, not the ent
// client: the client refuses updates of audit rows, and the sealer's
// statements should not count as the requests' (store.Statements).
func (s *sealer) sealBatch(ctx context.Context) (int, error) {
	var (
		tx  *sql.Tx
		err error
	)
	if s.lead != nil {
		tx, err = s.lead.BeginTx(ctx, nil)
	} else {
		tx, err = s.t.st.DB.BeginTx(ctx, nil) // SQLite: BEGIN IMMEDIATE, the write lock
	}
	if err != nil {
		return 0, fmt.Errorf("audit: seal: begin: %w", err)
	}
	defer tx.Rollback()
	pg := s.t.st.Dialect == dialect.Postgres
	if !s.positionsFixed {
		if _, err := tx.ExecContext(ctx, "UPDATE audit_events SET position = seq WHERE position = 0 AND seq IS NOT NULL"); err != nil {
			return 0, fmt.Errorf("audit: seal: list rows of earlier versions by seq: %w", err)
		}
	}
	seq, prev, err := readHead(ctx, tx)
	if err != nil {
		return 0, err
	}
	rows, err := readUnsealed(ctx, tx, s.t.batch, pg)
	if err != nil || len(rows) == 0 {
		if err == nil {
			err = tx.Commit()
			s.positionsFixed = err == nil
		}
		return 0, err
	}
	key := s.t.opts.Keys.Signer()
	args := make([]any, 0, 5*len(rows))
	var values strings.Builder
	for i, r := range rows {
		seq++
		h := chainHash(key, r, seq, prev)
		if i > 0 {
			values.WriteString(", ")
		}
		if n := len(args); pg {
			fmt.Fprintf(&values, "($%d::text, $%d::bigint, $%d::text, $%d::text, $%d::text)", n+1, n+2, n+3, n+4, n+5)
		} else {
			values.WriteString("(?, ?, ?, ?, ?)")
		}
		args = append(args, r.ID, seq, prev, h, key.ID)
		prev = h
	}
	// One statement for the batch; "seq IS NULL" makes a second sealer
	// that got here too find nothing to update and fail below.
	query := `WITH v(id, seq, prev_hash, hash, key_id) AS (VALUES ` + values.String() + `)
UPDATE audit_events SET seq = v.seq, position = v.seq, prev_hash = v.prev_hash, hash = v.hash, key_id = v.key_id
FROM v WHERE audit_events.id = v.id AND audit_events.seq IS NULL`
	res, err := tx.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, fmt.Errorf("audit: seal: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n != int64(len(rows)) {
		return 0, fmt.Errorf("audit: seal: %d of %d rows updated (%v): another sealer?", n, len(rows), err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("audit: seal: commit: %w", err)
	}
	s.positionsFixed = true
	s.headSeq, s.headHash, s.headPending = seq, prev, true
	return len(rows), nil
}

// readHead returns the seq and hash of the last sealed row, or 0 and
// GenesisHash on an empty chain.
func readHead(ctx context.Context, tx sqlTx) (int64, string, error) {
	var (
		seq  int64
		hash sql.NullString
	)
	err := tx.QueryRowContext(ctx, "SELECT seq, hash FROM audit_events WHERE seq IS NOT NULL ORDER BY seq DESC LIMIT 1").Scan(&seq, &hash)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, GenesisHash, nil
	case err != nil:
		return 0, "", fmt.Errorf("audit: read chain head: %w", err)
	}
	return seq, hash.String, nil
}

// contentColumns are what the digests read, in the order scanRow scans.
const contentColumns = "id, occurred_at, actor_id, actor_name, roles, operation, kind, outcome, error_code, object_types, object_ids, patient_ids, fields, client_addr, request_id, reason, entry_mac"

// readUnsealed returns up to limit unsealed rows in insertion order.
func readUnsealed(ctx context.Context, tx sqlTx, limit int, pg bool) ([]*ent.AuditEvent, error) {
	q := "SELECT " + contentColumns + " FROM audit_events WHERE seq IS NULL ORDER BY position, id LIMIT " + strconv.Itoa(limit)
	if pg {
		// Rows another sealer is working on are not this one's.
		q += " FOR UPDATE"
	}
	rows, err := tx.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("audit: read unsealed rows: %w", err)
	}
	defer rows.Close()
	var out []*ent.AuditEvent
	for rows.Next() {
		r, err := scanRow(rows)
		if err != nil {
			return nil, fmt.Errorf("audit: read unsealed rows: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit: read unsealed rows: %w", err)
	}
	return out, nil
}

func scanRow(rows *sql.Rows) (*ent.AuditEvent, error) {
	var (
		r                                                  ent.AuditEvent
		actorID, actorName, errCode, patients, addr, reqID sql.NullString
		reason, mac                                        sql.NullString
		roles, types, ids, fields                          []byte
		kind, outcome                                      string
	)
	if err := rows.Scan(&r.ID, &r.OccurredAt, &actorID, &actorName, &roles, &r.Operation, &kind, &outcome,
		&errCode, &types, &ids, &patients, &fields, &addr, &reqID, &reason, &mac); err != nil {
		return nil, err
	}
	r.OccurredAt = r.OccurredAt.UTC()
	r.ActorID, r.ActorName, r.ErrorCode = actorID.String, actorName.String, errCode.String
	r.PatientIds, r.ClientAddr, r.RequestID, r.EntryMAC = patients.String, addr.String, reqID.String, mac.String
	r.Reason = reason.String
	r.Kind, r.Outcome = auditevent.Kind(kind), auditevent.Outcome(outcome)
	for _, l := range []struct {
		raw []byte
		to  *[]string
	}{{roles, &r.Roles}, {types, &r.ObjectTypes}, {ids, &r.ObjectIds}, {fields, &r.Fields}} {
		if len(l.raw) == 0 {
			continue
		}
		if err := json.Unmarshal(l.raw, l.to); err != nil {
			return nil, fmt.Errorf("row %s: %w", r.ID, err)
		}
	}
	return &r, nil
}

// unsealedUpTo counts unsealed rows listed at or before position mark.
func (t *Trail) unsealedUpTo(ctx context.Context, mark int64) (int64, error) {
	q := "SELECT COUNT(*) FROM audit_events WHERE seq IS NULL AND position <= ?"
	if t.st.Dialect == dialect.Postgres {
		q = strings.Replace(q, "?", "$1", 1)
	}
	var n int64
	if err := t.st.DB.QueryRowContext(ctx, q, mark).Scan(&n); err != nil {
		return 0, fmt.Errorf("audit: count unsealed rows: %w", err)
	}
	return n, nil
}

// checkpoint appends the head sealed last to the checkpoint file.
func (s *sealer) checkpoint() error {
	path := s.t.opts.CheckpointFile
	if path == "" {
		s.headPending = false
		return nil
	}
	cp := newCheckpoint(s.t.opts.Keys.Signer(), s.headSeq, s.headHash, time.Now())
	if err := appendCheckpoint(path, cp); err != nil {
		return err
	}
	s.headPending = false
	s.lastCheckpoint = time.Now()
	return nil
}
