package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"entgo.io/ent/dialect"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/outboxevent"
	"github.com/hmis-dev/hmis/internal/store"
	"github.com/hmis-dev/hmis/internal/testenv"
)

var quietLog = slog.New(slog.DiscardHandler)

type bedPayload struct {
	Bed string `json:"bed"`
	N   int    `json:"n"`
}

func TestOutboxPublishesOnlyCommitted(t *testing.T) {
	forEachBroker(t, func(t *testing.T, b Broker) {
		ctx := context.Background()
		st := testenv.Store(t)
		relay := NewRelay(st, b, quietLog)
		ch := subscribe(t, b, "bed.board", "")

		errRejected := errors.New("rejected")
		err := st.InTx(ctx, func(ctx context.Context, tx *ent.Tx) error {
			if err := Record(ctx, tx, "bed.board", "bed.assigned", bedPayload{Bed: "A1"}); err != nil {
				return err
			}
			return errRejected
		})
		if !errors.Is(err, errRejected) {
			t.Fatalf("InTx = %v", err)
		}
		if err := relay.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		quiet(t, ch)
		if n := st.Client.OutboxEvent.Query().CountX(ctx); n != 0 {
			t.Fatalf("rolled-back transaction left %d outbox rows", n)
		}

		err = st.InTx(ctx, func(ctx context.Context, tx *ent.Tx) error {
			if err := Record(ctx, tx, "bed.board", "bed.assigned", bedPayload{Bed: "A2"}); err != nil {
				return err
			}
			return Record(ctx, tx, "bed.board", "bed.released", bedPayload{Bed: "A1"})
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := relay.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		got := take(t, ch, 2)
		for i, want := range []struct{ typ, bed string }{{"bed.assigned", "A2"}, {"bed.released", "A1"}} {
			var p bedPayload
			if err := json.Unmarshal(got[i].Payload, &p); err != nil {
				t.Fatalf("payload %q: %v", got[i].Payload, err)
			}
			if got[i].Topic != "bed.board" || got[i].Type != want.typ || p.Bed != want.bed {
				t.Fatalf("event %d = %s %s %s, want %s for bed %s", i, got[i].Topic, got[i].Type, got[i].Payload, want.typ, want.bed)
			}
		}
		if err := relay.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		quiet(t, ch)

		rows := st.Client.OutboxEvent.Query().Order(outboxevent.ByCreatedAt(), outboxevent.ByID()).AllX(ctx)
		if len(rows) != 2 {
			t.Fatalf("%d outbox rows, want 2", len(rows))
		}
		for i, row := range rows {
			if row.PublishedAt == nil || row.BrokerID != got[i].ID {
				t.Fatalf("row %d: published_at %v, broker_id %q; want set and %q", i, row.PublishedAt, row.BrokerID, got[i].ID)
			}
		}
	})
}

// Relays in one process and in another (a second connection pool on the
// same database) run while events are being recorded; every event reaches
// the broker once, and each topic in the order it was recorded.
func TestRelaysPublishEachRowOnce(t *testing.T) {
	const (
		txs     = 30
		perTx   = 7
		total   = txs * perTx
		nTopics = 3
	)
	forEachBroker(t, func(t *testing.T, b Broker) {
		ctx := context.Background()
		st := testenv.Store(t)
		other := reopen(t, st)
		relays := []*Relay{NewRelay(st, b, quietLog), NewRelay(st, b, quietLog), NewRelay(other, b, quietLog)}

		topic := func(i int) string { return fmt.Sprintf("ward.%d", i%nTopics) }
		chans := make([]<-chan Event, nTopics)
		for i := range chans {
			chans[i] = subscribe(t, b, topic(i), "")
		}
		received := make([][]Event, nTopics)
		var collectors sync.WaitGroup
		for i := range chans {
			collectors.Go(func() {
				for len(received[i]) < total/nTopics {
					select {
					case ev, ok := <-chans[i]:
						if !ok {
							return
						}
						received[i] = append(received[i], ev)
					case <-time.After(waitFor):
						return
					}
				}
			})
		}

		writing := make(chan struct{})
		errs := make(chan error, len(relays)+1)
		go func() {
			defer close(writing)
			for k := range txs {
				err := st.InTx(ctx, func(ctx context.Context, tx *ent.Tx) error {
					for j := range perTx {
						n := k*perTx + j
						if err := Record(ctx, tx, topic(n), "bed.assigned", bedPayload{Bed: "B", N: n}); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
		var flushers sync.WaitGroup
		for _, r := range relays {
			flushers.Go(func() {
				for {
					select {
					case <-writing:
						errs <- r.Flush(ctx)
						return
					default:
					}
					if err := r.Flush(ctx); err != nil {
						errs <- err
						return
					}
					time.Sleep(time.Millisecond)
				}
			})
		}
		flushers.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		collectors.Wait()

		for i := range nTopics {
			if len(received[i]) != total/nTopics {
				t.Fatalf("topic %s: received %d events, want %d", topic(i), len(received[i]), total/nTopics)
			}
			for j, ev := range received[i] {
				var p bedPayload
				if err := json.Unmarshal(ev.Payload, &p); err != nil {
					t.Fatal(err)
				}
				if want := j*nTopics + i; p.N != want {
					t.Fatalf("topic %s: event %d carries n=%d, want %d", topic(i), j, p.N, want)
				}
			}
		}
		quiet(t, chans...)
		if n := st.Client.OutboxEvent.Query().Where(outboxevent.PublishedAtIsNil()).CountX(ctx); n != 0 {
			t.Fatalf("%d rows left unpublished", n)
		}
	})
}

func TestRelayRunPublishesAfterPoke(t *testing.T) {
	forEachBroker(t, func(t *testing.T, b Broker) {
		st := testenv.Store(t)
		relay := NewRelay(st, b, quietLog)
		ch := subscribe(t, b, "lab.results", "")
		ctx, cancel := context.WithCancel(context.Background())
		stopped := make(chan struct{})
		go func() {
			defer close(stopped)
			relay.Run(ctx)
		}()
		for i := range 3 {
			err := st.InTx(context.Background(), func(ctx context.Context, tx *ent.Tx) error {
				return Record(ctx, tx, "lab.results", "result.verified", bedPayload{N: i})
			})
			if err != nil {
				t.Fatal(err)
			}
			relay.Poke()
			relay.Poke() // never blocks, however often it is called
			take(t, ch, 1)
		}
		cancel()
		select {
		case <-stopped:
		case <-time.After(waitFor):
			t.Fatal("Run did not return after its context ended")
		}
	})
}

// A broker that refuses events leaves the rows pending, in order, until it
// accepts them again.
func TestRelayRetriesAfterPublishFailure(t *testing.T) {
	ctx := context.Background()
	st := testenv.Store(t)
	closed := NewMemoryBroker(10)
	closed.Close()
	for i := range 3 {
		err := st.InTx(ctx, func(ctx context.Context, tx *ent.Tx) error {
			return Record(ctx, tx, "lab.results", "result.verified", bedPayload{N: i})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := NewRelay(st, closed, quietLog).Flush(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Flush to a closed broker = %v, want ErrClosed", err)
	}
	if n := st.Client.OutboxEvent.Query().Where(outboxevent.PublishedAtIsNil()).CountX(ctx); n != 3 {
		t.Fatalf("%d rows pending after a failed publish, want 3", n)
	}
	b := NewMemoryBroker(10)
	t.Cleanup(func() { b.Close() })
	if err := NewRelay(st, b, quietLog).Flush(ctx); err != nil {
		t.Fatal(err)
	}
	got := take(t, subscribe(t, b, "lab.results", "0-0"), 3)
	for i, ev := range got {
		if string(ev.Payload) != fmt.Sprintf(`{"bed":"","n":%d}`, i) {
			t.Fatalf("event %d payload %s", i, ev.Payload)
		}
	}
}

// While a relay in another process holds the turn, a relay's periodic round
// skips (PostgreSQL) and Flush waits for the turn rather than returning
// with the work undone.
func TestFlushWaitsForAnotherProcessesTurn(t *testing.T) {
	ctx := context.Background()
	st := testenv.Store(t)
	other := reopen(t, st)
	b := NewMemoryBroker(10)
	t.Cleanup(func() { b.Close() })
	relay := NewRelay(st, b, quietLog)
	ch := subscribe(t, b, "lab.results", "")
	err := st.InTx(ctx, func(ctx context.Context, tx *ent.Tx) error {
		return Record(ctx, tx, "lab.results", "result.verified", bedPayload{N: 1})
	})
	if err != nil {
		t.Fatal(err)
	}

	// On SQLite the open transaction holds the write lock, as a relay
	// round in another process would.
	holder, err := other.Client.Tx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Rollback()
	if st.Dialect == dialect.Postgres {
		if _, err := holder.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", relayLockKey); err != nil {
			t.Fatal(err)
		}
		if err := relay.drain(ctx, false); err != nil {
			t.Fatal(err)
		}
		quiet(t, ch)
	}

	flushed := make(chan error, 1)
	go func() { flushed <- relay.Flush(ctx) }()
	select {
	case err := <-flushed:
		t.Fatalf("Flush returned (%v) while another relay held the turn", err)
	case <-time.After(200 * time.Millisecond):
	}
	if err := holder.Rollback(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-flushed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(waitFor):
		t.Fatal("Flush did not finish once the turn was free")
	}
	take(t, ch, 1)
	quiet(t, ch)
}

// reopen opens a second store on st's database, as another server process
// would.
func reopen(t *testing.T, st *store.Store) *store.Store {
	t.Helper()
	var (
		other *store.Store
		err   error
	)
	if st.Dialect == dialect.Postgres {
		var name string
		if err := st.DB.QueryRow("SELECT current_database()").Scan(&name); err != nil {
			t.Fatal(err)
		}
		u, perr := url.Parse(os.Getenv("HMIS_TEST_DATABASE_URL"))
		if perr != nil {
			t.Fatal(perr)
		}
		u.Path = "/" + name
		other, err = store.Open(u.String(), "")
	} else {
		var (
			seq        int
			name, file string
		)
		if err := st.DB.QueryRow("PRAGMA database_list").Scan(&seq, &name, &file); err != nil {
			t.Fatal(err)
		}
		other, err = store.Open("", file)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	return other
}
