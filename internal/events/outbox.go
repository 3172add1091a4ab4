package events

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/outboxevent"
	"github.com/hmis-dev/hmis/internal/store"
)

// Record writes an outbox row in tx: the event becomes visible to the relay
// only if tx commits, and in a transaction of store.Tx the relay is poked
// once it has. payload is JSON-marshalled.
func Record(ctx context.Context, tx *ent.Tx, topic, typ string, payload any) error {
	body, err := json.Marshal(payload)
	if err != nil {
		return fmt.Errorf("events: encode %s payload: %w", typ, err)
	}
	if err := tx.OutboxEvent.Create().SetTopic(topic).SetType(typ).SetPayload(body).Exec(ctx); err != nil {
		return fmt.Errorf("events: record %s: %w", typ, err)
	}
	store.RecordedEvents(ctx)
	return nil
}

const (
	relayInterval = 500 * time.Millisecond
	relayMaxWait  = 10 * time.Second // between attempts while the broker or database is failing
	relayBatch    = 100
	// relayRoundTimeout bounds one round's transaction, which a shutdown
	// does not cancel (see round).
	relayRoundTimeout = 30 * time.Second
	// relayLockKey is the PostgreSQL advisory lock every relay of every
	// process contends for ("hmis-out" in ASCII). store.Lock hashes its keys
	// over the whole int64 range, so one of them landing on this value is
	// negligibly unlikely.
	relayLockKey int64 = 0x686d69732d6f7574
)

// relayLocks serialises the rounds of the relays of one process on the same
// database. On SQLite that is all the exclusion needed (one process uses the
// file, and an immediate transaction would serialise them anyway, only by
// busy-waiting); on PostgreSQL it saves relays in one process from taking
// turns at the advisory lock.
var relayLocks sync.Map // *sql.DB → *sync.Mutex

func relayLock(db *sql.DB) *sync.Mutex {
	m, _ := relayLocks.LoadOrStore(db, new(sync.Mutex))
	return m.(*sync.Mutex)
}

// The broker must find again every event of the batch a relay died in.
var _ [MinKeys - relayBatch]struct{}

// Relay publishes committed outbox rows to a Broker, oldest first, marking
// each published, with its event's ID, in the same transaction that read
// it. Each row becomes one event, exactly: if the relay dies, or its commit
// fails, after the broker accepted an event, the row is published again in
// a later round under its ID as key, and the broker returns the event it
// already has.
//
// A broker that lives in this process (MemoryBroker) would lose that event
// with the process, while a client may have seen it; so the relay stages
// the events there and releases them only once its marks are committed.
type Relay struct {
	st   *store.Store
	b    Broker
	log  *slog.Logger
	mu   *sync.Mutex
	poke chan struct{}
}

// NewRelay returns a relay from st's outbox to b, logging failures to log.
func NewRelay(st *store.Store, b Broker, log *slog.Logger) *Relay {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Relay{st: st, b: b, log: log, mu: relayLock(st.DB), poke: make(chan struct{}, 1)}
}

// Poke tells the relay that something was committed, so that it publishes
// soon rather than at its next tick. It never blocks.
func (r *Relay) Poke() {
	select {
	case r.poke <- struct{}{}:
	default:
	}
}

// Run publishes pending rows on Poke and every 500ms until ctx is done.
// While publishing fails it waits longer between attempts, and pokes do not
// cut the wait short: a busy system would otherwise retry, and log, on every
// commit. Every ten minutes it also deletes what no broker can replay any
// longer (Prune).
func (r *Relay) Run(ctx context.Context) {
	wait := relayInterval
	timer := time.NewTimer(0)
	defer timer.Stop()
	nextPrune := time.Now().Add(pruneInterval)
	for {
		poke := r.poke
		if wait > relayInterval {
			poke = nil
		}
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-poke:
			timer.Stop()
		}
		if err := r.drain(ctx, false); err != nil {
			if ctx.Err() != nil {
				return
			}
			r.log.Warn("outbox relay: publishing failed, will retry", "err", err, "retry_in", wait)
			timer.Reset(wait)
			wait = min(wait*2, relayMaxWait)
			continue
		}
		wait = relayInterval
		timer.Reset(relayInterval)
		if time.Now().After(nextPrune) {
			nextPrune = time.Now().Add(pruneInterval)
			if n, err := r.Prune(ctx); err != nil && ctx.Err() == nil {
				r.log.Warn("outbox relay: pruning failed, will retry", "err", err, "deleted", n)
			}
		}
	}
}

// Flush publishes everything pending now and returns when it is done, or
// with the error that stopped it. If a relay in another process holds the
// turn, Flush waits for it.
func (r *Relay) Flush(ctx context.Context) error {
	return r.drain(ctx, true)
}

// drain runs rounds until nothing is pending. When another process holds the
// turn it gives up, or with wait polls until it gets the turn.
func (r *Relay) drain(ctx context.Context, wait bool) error {
	for {
		more, busy, err := r.round(ctx)
		switch {
		case err != nil:
			return err
		case busy && !wait:
			return nil
		case busy:
			if !sleep(ctx, 20*time.Millisecond) {
				return ctx.Err()
			}
		case !more:
			return nil
		}
	}
}

// errRoundStopped marks a round cut short by its caller's context.
var errRoundStopped = errors.New("events: relay stopped")

// round publishes one batch. busy reports that another process's relay held
// the turn; more, that a full batch was published and more may be pending.
//
// The transaction runs on a context that ctx's cancellation does not reach:
// cancelling it would roll back the marks of events already published, for
// the next round to publish again (harmless, but wasted; and on the
// in-process broker they would wait for it). A cancelled ctx instead ends
// the round between two events, and what was published is committed.
func (r *Relay) round(ctx context.Context) (more, busy bool, err error) {
	if err := ctx.Err(); err != nil {
		return false, false, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	txctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), relayRoundTimeout)
	defer cancel()
	staging, _ := r.b.(stager)
	if staging != nil {
		if err := r.settle(txctx, staging); err != nil {
			return false, false, err
		}
	}

	// Most ticks find nothing to do; they need not take the turn, which on
	// SQLite means the database's write lock.
	pending, err := r.st.Client.OutboxEvent.Query().Where(outboxevent.PublishedAtIsNil()).Exist(txctx)
	if err != nil {
		return false, false, fmt.Errorf("events: relay: read outbox: %w", err)
	}
	if !pending {
		return false, false, nil
	}
	tx, err := r.st.Client.Tx(txctx)
	if err != nil {
		return false, false, fmt.Errorf("events: relay: begin: %w", err)
	}
	defer func() {
		if tx != nil {
			_ = tx.Rollback()
		}
	}()
	if r.st.Dialect == dialect.Postgres {
		got, err := tryAdvisoryLock(txctx, tx)
		if err != nil {
			return false, false, err
		}
		if !got {
			return false, true, nil
		}
	}
	rows, err := tx.OutboxEvent.Query().
		Where(outboxevent.PublishedAtIsNil()).
		Order(outboxevent.ByCreatedAt(), outboxevent.ByID()).
		Limit(relayBatch).
		All(txctx)
	if err != nil {
		return false, false, fmt.Errorf("events: relay: read outbox: %w", err)
	}
	publish := r.b.Publish
	if staging != nil {
		publish = staging.stage
	}
	var (
		stop   error
		marked []string
	)
	for _, row := range rows {
		if ctx.Err() != nil {
			stop = errRoundStopped
			break
		}
		ev, err := publish(txctx, row.Topic, row.Type, row.Payload, row.ID)
		if err != nil {
			// Later rows wait, so that a topic's events keep their order.
			// Only the row's ID and type are named: payloads and topics
			// may carry patient identifiers.
			stop = fmt.Errorf("publish outbox event %s (%s): %w", row.ID, row.Type, err)
			break
		}
		// A bulk update of the one row: UpdateOneID would read it back.
		if _, err := tx.OutboxEvent.Update().Where(outboxevent.ID(row.ID)).
			SetPublishedAt(ev.Time).
			SetBrokerID(ev.ID).
			Save(txctx); err != nil {
			return false, false, fmt.Errorf("events: relay: mark %s published: %w", row.ID, err)
		}
		marked = append(marked, row.ID)
	}
	err = tx.Commit()
	tx = nil
	if err != nil {
		// Staged events stay staged: settle finds out next round whether
		// the commit happened after all.
		return false, false, fmt.Errorf("events: relay: commit: %w", err)
	}
	if staging != nil {
		staging.release(marked, nil)
	}
	if stop != nil {
		if errors.Is(stop, errRoundStopped) {
			return false, false, ctx.Err()
		}
		return false, false, stop
	}
	return len(rows) == relayBatch, false, nil
}

// stager is a Broker whose events die with this process (MemoryBroker).
// Events the relay stages get their IDs but reach no subscriber until
// released; staging a key again returns its staged event.
type stager interface {
	stage(ctx context.Context, topic, typ string, payload []byte, key string) (Event, error)
	// release delivers the events of keys and forgets those of discard.
	release(keys, discard []string)
	// staged returns the events staged and not released, by key.
	staged() map[string]string
}

// settle releases the events a round staged but could not release because
// its commit failed: those whose rows the outbox shows published with their
// IDs, as happens when a commit succeeds but reports otherwise. Events of
// rows still pending stay staged, for the next round to publish again;
// events of rows gone, or published under other IDs, are dropped.
func (r *Relay) settle(ctx context.Context, s stager) error {
	staged := s.staged()
	if len(staged) == 0 {
		return nil
	}
	keys := make([]string, 0, len(staged))
	for k := range staged {
		keys = append(keys, k)
	}
	rows, err := r.st.Client.OutboxEvent.Query().Where(outboxevent.IDIn(keys...)).All(ctx)
	if err != nil {
		return fmt.Errorf("events: relay: read outbox: %w", err)
	}
	pending := make(map[string]bool, len(rows))
	var release, discard []string
	for _, row := range rows {
		switch {
		case row.PublishedAt == nil:
			pending[row.ID] = true
		case row.BrokerID == staged[row.ID]:
			release = append(release, row.ID)
			pending[row.ID] = true
		}
	}
	for _, k := range keys {
		if !pending[k] {
			discard = append(discard, k)
		}
	}
	s.release(release, discard)
	return nil
}

// Restore loads into b the events the outbox records as published, the
// newest of each topic up to b's retention, under the IDs they were
// published with; older ones count as dropped, so that a cursor before them
// gets ErrCursorExpired. A server on the in-process broker calls it at
// start, before its relay runs: a client resuming with a cursor from
// before a restart then gets exactly the events after it.
func Restore(ctx context.Context, st *store.Store, b *MemoryBroker) error {
	topics, err := st.Client.OutboxEvent.Query().
		Where(outboxevent.PublishedAtNotNil()).
		GroupBy(outboxevent.FieldTopic).
		Strings(ctx)
	if err != nil {
		return fmt.Errorf("events: restore: %w", err)
	}
	for _, topic := range topics {
		// Newest first by publication time, which is where the in-process
		// broker's IDs start; sorted by ID below.
		rows, err := st.Client.OutboxEvent.Query().
			Where(outboxevent.Topic(topic), outboxevent.PublishedAtNotNil(), outboxevent.BrokerIDNEQ("")).
			Order(outboxevent.ByPublishedAt(entsql.OrderDesc()), outboxevent.ByID(entsql.OrderDesc())).
			Limit(b.retain + 1).
			All(ctx)
		if err != nil {
			return fmt.Errorf("events: restore %s: %w", topic, err)
		}
		evs := make([]Event, 0, len(rows))
		for _, row := range rows {
			if !ValidID(row.BrokerID) {
				continue
			}
			evs = append(evs, Event{ID: row.BrokerID, Topic: row.Topic, Type: row.Type, Payload: row.Payload})
		}
		slices.SortFunc(evs, func(x, y Event) int { return CompareIDs(x.ID, y.ID) })
		var dropped eventID
		if len(evs) > b.retain {
			dropped, _ = parseID(evs[0].ID)
			evs = evs[1:]
		}
		if err := b.restore(topic, evs, dropped); err != nil {
			return err
		}
	}
	return nil
}

// tryAdvisoryLock takes the relay's turn for the length of tx, without
// waiting: a relay that finds it taken leaves the work to the holder and
// looks again at its next tick.
func tryAdvisoryLock(ctx context.Context, tx *ent.Tx) (bool, error) {
	rows, err := tx.QueryContext(ctx, "SELECT pg_try_advisory_xact_lock($1)", relayLockKey)
	if err != nil {
		return false, fmt.Errorf("events: relay: lock: %w", err)
	}
	defer rows.Close()
	var got bool
	if rows.Next() {
		if err := rows.Scan(&got); err != nil {
			return false, fmt.Errorf("events: relay: lock: %w", err)
		}
	}
	if err := rows.Err(); err != nil {
		return false, fmt.Errorf("events: relay: lock: %w", err)
	}
	return got, nil
}
