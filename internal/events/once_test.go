package events

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/outboxevent"
	"github.com/hmis-dev/hmis/internal/store"
	"github.com/hmis-dev/hmis/internal/testenv"
)

// forEachSmallBroker is forEachBroker with a retention of retain events.
func forEachSmallBroker(t *testing.T, retain int, fn func(t *testing.T, b Broker)) {
	t.Helper()
	t.Run("memory", func(t *testing.T) {
		b := NewMemoryBroker(retain)
		t.Cleanup(func() { b.Close() })
		fn(t, b)
	})
	t.Run("redis", func(t *testing.T) {
		client, prefix := testenv.Redis(t)
		if client == nil {
			t.Skip("HMIS_TEST_REDIS_URL is not set")
		}
		b := NewRedisBroker(client, prefix, int64(retain))
		b.block = 50 * time.Millisecond
		t.Cleanup(func() { b.Close() })
		fn(t, b)
	})
}

func TestPublishIsIdempotentOnKey(t *testing.T) {
	forEachSmallBroker(t, 3, func(t *testing.T, b Broker) {
		ctx := context.Background()
		ch := subscribe(t, b, "lab.results", "")
		var first []Event
		for i := range 10 {
			ev, err := b.Publish(ctx, "lab.results", "tick", payloadN(i), fmt.Sprintf("evt_%d", i))
			if err != nil {
				t.Fatal(err)
			}
			first = append(first, ev)
		}
		sameEvents(t, take(t, ch, 10), first)
		// Every key again, even those whose events fell out of the
		// retained three: the same event back, nothing published.
		for i := range 10 {
			ev, err := b.Publish(ctx, "lab.results", "tick", payloadN(i), fmt.Sprintf("evt_%d", i))
			if err != nil {
				t.Fatal(err)
			}
			sameEvents(t, []Event{ev}, first[i:i+1])
		}
		quiet(t, ch)
		// A key is per topic, and an empty key publishes every time.
		other, err := b.Publish(ctx, "bed.board", "tick", payloadN(0), "evt_0")
		if err != nil {
			t.Fatal(err)
		}
		plain := publishN(t, b, "lab.results", 20, 1)
		plain = append(plain, publishN(t, b, "lab.results", 20, 1)...)
		sameEvents(t, take(t, ch, 2), plain)
		if other.Topic != "bed.board" || CompareIDs(plain[0].ID, plain[1].ID) >= 0 {
			t.Fatalf("unexpected events %+v %+v", other, plain)
		}
	})
}

// Once more than MinKeys keys have been published to a topic, the oldest
// are forgotten: the key lists do not grow with the stream's history.
func TestPublishKeysAreBounded(t *testing.T) {
	forEachSmallBroker(t, 3, func(t *testing.T, b Broker) {
		ctx := context.Background()
		var firstID string
		for i := range MinKeys + 1 {
			ev, err := b.Publish(ctx, "vitals", "tick", nil, fmt.Sprintf("evt_%d", i))
			if err != nil {
				t.Fatal(err)
			}
			if i == 0 {
				firstID = ev.ID
			}
		}
		again, err := b.Publish(ctx, "vitals", "tick", nil, "evt_0")
		if err != nil {
			t.Fatal(err)
		}
		if again.ID == firstID {
			t.Fatalf("key evt_0 still remembered after %d newer keys", MinKeys)
		}
		if rb, ok := b.(*RedisBroker); ok {
			n, err := rb.client.HLen(ctx, rb.prefix+"events-keys:vitals").Result()
			if err != nil {
				t.Fatal(err)
			}
			if n != MinKeys {
				t.Fatalf("Redis keeps %d keys, want %d", n, MinKeys)
			}
		}
	})
}

// A cursor from which events have been trimmed is refused; one at or after
// the newest trimmed event is not.
func TestExpiredCursor(t *testing.T) {
	forEachSmallBroker(t, 10, func(t *testing.T, b Broker) {
		ctx := context.Background()
		// Redis trims whole nodes of 100 entries, so publish past one.
		evs := publishN(t, b, "lab.results", 0, 250)
		firstKept := len(evs) - 10
		if rb, ok := b.(*RedisBroker); ok {
			msgs, err := rb.client.XRangeN(ctx, rb.key("lab.results"), "-", "+", 1).Result()
			if err != nil {
				t.Fatal(err)
			}
			firstKept = -1
			for i, ev := range evs {
				if ev.ID == msgs[0].ID {
					firstKept = i
				}
			}
			if firstKept < 1 {
				t.Fatalf("stream starts at %s, not trimmed", msgs[0].ID)
			}
		}
		for _, after := range []string{"0-0", evs[0].ID, evs[firstKept-2].ID} {
			if _, err := b.Subscribe(ctx, "lab.results", after); !errors.Is(err, ErrCursorExpired) {
				t.Fatalf("Subscribe(after=%s) = %v, want ErrCursorExpired", after, err)
			}
		}
		// The newest trimmed event is the last one this cursor's holder
		// saw: it has missed nothing.
		ch := subscribe(t, b, "lab.results", evs[firstKept-1].ID)
		sameEvents(t, take(t, ch, len(evs)-firstKept), evs[firstKept:])
		quiet(t, ch)
		// Subscribing from now never expires, nor does a topic never trimmed.
		subscribe(t, b, "lab.results", "")
		subscribe(t, b, "bed.board", "0-0")
	})
}

// errKilled stands for the relay's process dying at that point.
var errKilled = errors.New("killed")

// killer wraps a broker for a relay that dies on its publish number at
// (1-based): before publishing if before, else after the broker accepted
// the event. With panic it dies outright, its round's transaction rolled
// back, marks and all; without, only the publish fails and the round
// commits the marks before it.
type killer struct {
	Broker
	at     int
	before bool
	panic  bool
	calls  int
}

func (k *killer) publish(ctx context.Context, pub func(context.Context, string, string, []byte, string) (Event, error),
	topic, typ string, payload []byte, key string) (Event, error) {
	k.calls++
	die := func() (Event, error) {
		if k.panic {
			panic(errKilled)
		}
		return Event{}, errKilled
	}
	if k.calls == k.at && k.before {
		return die()
	}
	ev, err := pub(ctx, topic, typ, payload, key)
	if err == nil && k.calls == k.at {
		return die()
	}
	return ev, err
}

func (k *killer) Publish(ctx context.Context, topic, typ string, payload []byte, key string) (Event, error) {
	return k.publish(ctx, k.Broker.Publish, topic, typ, payload, key)
}

// stagingKiller is a killer in front of the in-process broker, which the
// relay stages events in.
type stagingKiller struct {
	*killer
	s stager
}

func (k stagingKiller) stage(ctx context.Context, topic, typ string, payload []byte, key string) (Event, error) {
	return k.publish(ctx, k.s.stage, topic, typ, payload, key)
}
func (k stagingKiller) release(keys, discard []string) { k.s.release(keys, discard) }
func (k stagingKiller) staged() map[string]string      { return k.s.staged() }

func killing(b Broker, at int, before, panics bool) Broker {
	k := &killer{Broker: b, at: at, before: before, panic: panics}
	if s, ok := b.(stager); ok {
		return stagingKiller{killer: k, s: s}
	}
	return k
}

// flushDying runs one relay's Flush, which is to die.
func flushDying(t *testing.T, r *Relay) {
	t.Helper()
	err := func() (err error) {
		defer func() {
			if p := recover(); p != nil {
				if p != errKilled {
					panic(p)
				}
				err = errKilled
			}
		}()
		return r.Flush(context.Background())
	}()
	if !errors.Is(err, errKilled) {
		t.Fatalf("the dying relay's Flush = %v, want it killed", err)
	}
}

func recordN(t *testing.T, st *store.Store, topic string, n int) {
	t.Helper()
	err := st.InTx(context.Background(), func(ctx context.Context, tx *ent.Tx) error {
		for i := range n {
			if err := Record(ctx, tx, topic, "result.verified", bedPayload{N: i}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// checkOnce checks that got are the n recorded events, in order, each
// once, and that each outbox row is marked with the ID its event has.
func checkOnce(t *testing.T, st *store.Store, got []Event, n int) {
	t.Helper()
	rows := st.Client.OutboxEvent.Query().Order(outboxevent.ByCreatedAt(), outboxevent.ByID()).AllX(context.Background())
	if len(rows) != n || len(got) != n {
		t.Fatalf("%d rows, %d events; want %d of each", len(rows), len(got), n)
	}
	for i, row := range rows {
		if want := fmt.Sprintf(`{"bed":"","n":%d}`, i); string(got[i].Payload) != want {
			t.Fatalf("event %d carries %s, want %s", i, got[i].Payload, want)
		}
		if row.PublishedAt == nil || row.BrokerID != got[i].ID {
			t.Fatalf("row %d marked %q at %v, but its event is %s", i, row.BrokerID, row.PublishedAt, got[i].ID)
		}
	}
}

// A relay dies at every point of a round in turn; a fresh relay then
// publishes what is left, and a subscriber receives each recorded event
// once, under one ID, which is also the ID its row is marked with.
func TestRelayKilledMidRoundPublishesEachRowOnce(t *testing.T) {
	const n = 4
	cases := []struct {
		name          string
		at            int
		before, panic bool
	}{
		// Killed after the broker accepted the 2nd event, before its mark;
		// the marks of the 1st commit.
		{"after publish before mark", 2, false, false},
		// Killed after the 3rd event was accepted, its round rolled back:
		// the 1st and 2nd were marked too, but never committed.
		{"after publish and marks before commit", 3, false, true},
		// Killed while the 3rd event was being published, before the
		// broker had it; the round rolled back.
		{"before publish, round rolled back", 3, true, true},
		// The first publish of a round never happened: the rows committed
		// by the domain are all the next relay has.
		{"after the domain's commit before any publish", 1, true, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			forEachBroker(t, func(t *testing.T, b Broker) {
				st := testenv.Store(t)
				ch := subscribe(t, b, "lab.results", "")
				recordN(t, st, "lab.results", n)
				flushDying(t, NewRelay(st, killing(b, c.at, c.before, c.panic), quietLog))
				if _, ok := b.(*MemoryBroker); ok {
					// What the dead relay staged but never committed
					// reached nobody: it could come back under another ID.
					delivered := 0
					if !c.panic {
						delivered = c.at - 1
					}
					take(t, ch, delivered)
					quiet(t, ch)
					ch = subscribe(t, b, "lab.results", "0-0")
				}
				if err := NewRelay(st, b, quietLog).Flush(context.Background()); err != nil {
					t.Fatal(err)
				}
				got := take(t, ch, n)
				quiet(t, ch)
				checkOnce(t, st, got, n)
				replay := subscribe(t, b, "lab.results", "0-0")
				sameEvents(t, take(t, replay, n), got)
				quiet(t, replay)
			})
		})
	}
}

// A relay round commits its marks but dies before the in-process broker
// releases the events (or the commit reports a failure it did not have):
// the next round finds the rows marked and releases the staged events,
// under the IDs marked.
func TestStagedEventsSettledFromOutbox(t *testing.T) {
	ctx := context.Background()
	st := testenv.Store(t)
	b := NewMemoryBroker(10)
	t.Cleanup(func() { b.Close() })
	ch := subscribe(t, b, "lab.results", "")
	recordN(t, st, "lab.results", 3)
	rows := st.Client.OutboxEvent.Query().Order(outboxevent.ByCreatedAt(), outboxevent.ByID()).AllX(ctx)
	var staged []Event
	for _, row := range rows {
		ev, err := b.stage(ctx, row.Topic, row.Type, row.Payload, row.ID)
		if err != nil {
			t.Fatal(err)
		}
		staged = append(staged, ev)
	}
	// Row 0 committed as published, row 1 still pending, row 2 gone.
	st.Client.OutboxEvent.UpdateOneID(rows[0].ID).SetPublishedAt(staged[0].Time).SetBrokerID(staged[0].ID).ExecX(ctx)
	st.Client.OutboxEvent.DeleteOneID(rows[2].ID).ExecX(ctx)
	quiet(t, ch)
	if err := NewRelay(st, b, quietLog).Flush(ctx); err != nil {
		t.Fatal(err)
	}
	sameEvents(t, take(t, ch, 2), staged[:2])
	quiet(t, ch)
	if got := b.staged(); len(got) != 0 {
		t.Fatalf("still staged after settling: %v", got)
	}
	checkOnce(t, st, staged[:2], 2)
}

// The in-process broker of a restarted server is rebuilt from the outbox:
// a subscriber resuming with a cursor from before the restart gets exactly
// the events after it, under their IDs, then new ones; a cursor from before
// the retained history is refused.
func TestRestoreFromOutbox(t *testing.T) {
	ctx := context.Background()
	st := testenv.Store(t)
	before := NewMemoryBroker(100)
	recordN(t, st, "lab.results", 6)
	recordN(t, st, "bed.board", 2)
	if err := NewRelay(st, before, quietLog).Flush(ctx); err != nil {
		t.Fatal(err)
	}
	seen := take(t, subscribe(t, before, "lab.results", "0-0"), 6)
	// The process dies with two more rows recorded and not yet published.
	recordN(t, st, "lab.results", 2)
	before.Close()

	after := NewMemoryBroker(4)
	t.Cleanup(func() { after.Close() })
	if err := Restore(ctx, st, after); err != nil {
		t.Fatal(err)
	}
	resumed := subscribe(t, after, "lab.results", seen[2].ID)
	sameEvents(t, take(t, resumed, 3), seen[3:])
	for _, cursor := range []string{"0-0", seen[0].ID} {
		if _, err := after.Subscribe(ctx, "lab.results", cursor); !errors.Is(err, ErrCursorExpired) {
			t.Fatalf("Subscribe(after=%s) on the restored broker = %v, want ErrCursorExpired", cursor, err)
		}
	}
	take(t, subscribe(t, after, "bed.board", "0-0"), 2)

	if err := NewRelay(st, after, quietLog).Flush(ctx); err != nil {
		t.Fatal(err)
	}
	fresh := take(t, resumed, 2)
	quiet(t, resumed)
	for i, ev := range fresh {
		if CompareIDs(ev.ID, seen[5].ID) <= 0 {
			t.Fatalf("new event %d has ID %s, not after %s", i, ev.ID, seen[5].ID)
		}
		if want := fmt.Sprintf(`{"bed":"","n":%d}`, i); string(ev.Payload) != want {
			t.Fatalf("new event %d carries %s, want %s", i, ev.Payload, want)
		}
	}
}
