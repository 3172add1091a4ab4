package events

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hmis-dev/hmis/internal/testenv"
)

// waitFor bounds every wait in these tests; events normally arrive in
// milliseconds.
const waitFor = 5 * time.Second

// forEachBroker runs fn against the in-process broker and, when a test
// Redis is configured, against Redis Streams.
func forEachBroker(t *testing.T, fn func(t *testing.T, b Broker)) {
	t.Helper()
	t.Run("memory", func(t *testing.T) {
		b := NewMemoryBroker(1000)
		t.Cleanup(func() { b.Close() })
		fn(t, b)
	})
	t.Run("redis", func(t *testing.T) {
		client, prefix := testenv.Redis(t)
		if client == nil {
			t.Skip("HMIS_TEST_REDIS_URL is not set")
		}
		b := newTestRedisBroker(client, prefix)
		t.Cleanup(func() { b.Close() })
		fn(t, b)
	})
}

// newTestRedisBroker shortens the XREAD wait so that Close, which waits for
// readers to finish theirs, keeps the suite fast.
func newTestRedisBroker(client *redis.Client, prefix string) *RedisBroker {
	b := NewRedisBroker(client, prefix, 1000)
	b.block = 50 * time.Millisecond
	return b
}

func publishN(t *testing.T, b Broker, topic string, from, n int) []Event {
	t.Helper()
	evs := make([]Event, n)
	for i := range evs {
		ev, err := b.Publish(context.Background(), topic, "tick", payloadN(from+i), "")
		if err != nil {
			t.Fatalf("publish: %v", err)
		}
		evs[i] = ev
	}
	return evs
}

func payloadN(n int) []byte { return []byte(`{"n":` + strconv.Itoa(n) + `}`) }

func subscribe(t *testing.T, b Broker, topic, after string) <-chan Event {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ch, err := b.Subscribe(ctx, topic, after)
	if err != nil {
		t.Fatalf("subscribe(%q, %q): %v", topic, after, err)
	}
	return ch
}

// take receives exactly n events from ch.
func take(t *testing.T, ch <-chan Event, n int) []Event {
	t.Helper()
	got := make([]Event, 0, n)
	timeout := time.After(waitFor)
	for len(got) < n {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatalf("channel closed after %d of %d events", len(got), n)
			}
			got = append(got, ev)
		case <-timeout:
			t.Fatalf("received %d of %d events", len(got), n)
		}
	}
	return got
}

// quiet checks that nothing more arrives on any of chans for a while.
func quiet(t *testing.T, chans ...<-chan Event) {
	t.Helper()
	time.Sleep(150 * time.Millisecond)
	for _, ch := range chans {
		select {
		case ev, ok := <-ch:
			if ok {
				t.Fatalf("unexpected event %s %s", ev.ID, ev.Payload)
			}
		default:
		}
	}
}

// drainUntilClosed returns what ch still delivers before it closes.
func drainUntilClosed(t *testing.T, ch <-chan Event) []Event {
	t.Helper()
	var got []Event
	timeout := time.After(waitFor)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				return got
			}
			got = append(got, ev)
		case <-timeout:
			t.Fatalf("channel still open after %d events", len(got))
		}
	}
}

func sameEvents(t *testing.T, got, want []Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d events, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.ID != w.ID || g.Topic != w.Topic || g.Type != w.Type || string(g.Payload) != string(w.Payload) || !g.Time.Equal(w.Time) {
			t.Fatalf("event %d: got %+v, want %+v", i, g, w)
		}
	}
}

func TestPublishSubscribeInOrder(t *testing.T) {
	forEachBroker(t, func(t *testing.T, b Broker) {
		ch := subscribe(t, b, "lab.results", "")
		other := subscribe(t, b, "bed.board", "")
		want := publishN(t, b, "lab.results", 0, 50)
		for i, ev := range want {
			if !ValidID(ev.ID) {
				t.Fatalf("event %d has malformed ID %q", i, ev.ID)
			}
			if i > 0 && CompareIDs(want[i-1].ID, ev.ID) >= 0 {
				t.Fatalf("IDs not increasing: %s then %s", want[i-1].ID, ev.ID)
			}
			if ev.Time.Location() != time.UTC || time.Since(ev.Time) > time.Minute {
				t.Fatalf("event time %v is not a recent UTC time", ev.Time)
			}
		}
		sameEvents(t, take(t, ch, len(want)), want)
		quiet(t, ch, other)
	})
}

func TestReplayFromCursor(t *testing.T) {
	forEachBroker(t, func(t *testing.T, b Broker) {
		evs := publishN(t, b, "lab.results", 0, 3)
		ch := subscribe(t, b, "lab.results", evs[0].ID)
		sameEvents(t, take(t, ch, 2), evs[1:])
		live := publishN(t, b, "lab.results", 3, 1)
		sameEvents(t, take(t, ch, 1), live)
		quiet(t, ch)
	})
}

// Subscribers join mid-stream with a cursor while publishers run; each must
// see exactly the events after its cursor, whether they came from history,
// the live feed or both (on Redis the two overlap, and the overlap must not
// show).
func TestNoGapNoDuplicateUnderConcurrency(t *testing.T) {
	const (
		publishers = 4
		each       = 50
		total      = publishers * each
		joiners    = 8
	)
	forEachBroker(t, func(t *testing.T, b Broker) {
		var (
			mu        sync.Mutex
			published []string
		)
		mid := make(chan struct{})
		var once sync.Once
		errs := make(chan error, publishers)
		var wg sync.WaitGroup
		for p := range publishers {
			wg.Go(func() {
				for i := range each {
					ev, err := b.Publish(context.Background(), "vitals", "tick", []byte(fmt.Sprintf(`{"p":%d,"i":%d}`, p, i)), "")
					if err != nil {
						errs <- err
						return
					}
					mu.Lock()
					published = append(published, ev.ID)
					if len(published) == total/4 {
						once.Do(func() { close(mid) })
					}
					mu.Unlock()
				}
			})
		}
		<-mid
		cursors := make([]string, joiners)
		chans := make([]<-chan Event, joiners)
		for i := range joiners {
			mu.Lock()
			// Some cursors far back, some at the newest event.
			cursors[i] = published[len(published)*i/joiners]
			mu.Unlock()
			chans[i] = subscribe(t, b, "vitals", cursors[i])
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("publish: %v", err)
		}
		slices.SortFunc(published, CompareIDs)
		for i, ch := range chans {
			var want []string
			for _, id := range published {
				if CompareIDs(id, cursors[i]) > 0 {
					want = append(want, id)
				}
			}
			got := take(t, ch, len(want))
			for j := range want {
				if got[j].ID != want[j] {
					t.Fatalf("subscriber after %s: event %d is %s, want %s", cursors[i], j, got[j].ID, want[j])
				}
			}
		}
		quiet(t, chans...)
	})
}

func TestSubscribeFromNow(t *testing.T) {
	forEachBroker(t, func(t *testing.T, b Broker) {
		publishN(t, b, "bed.board", 0, 2)
		ch := subscribe(t, b, "bed.board", "")
		want := publishN(t, b, "bed.board", 2, 2)
		sameEvents(t, take(t, ch, 2), want)
		quiet(t, ch)

		// An empty topic too: the first event ever is "after now".
		empty := subscribe(t, b, "fresh.topic", "")
		first := publishN(t, b, "fresh.topic", 0, 1)
		sameEvents(t, take(t, empty, 1), first)
	})
}

func TestBadCursor(t *testing.T) {
	forEachBroker(t, func(t *testing.T, b Broker) {
		for _, after := range []string{"abc", "1", "1-", "-1", "1-2-3", "1-x", " 1-0", "+1-0", "1--1", "18446744073709551616-0"} {
			if _, err := b.Subscribe(context.Background(), "lab.results", after); !errors.Is(err, ErrBadCursor) {
				t.Errorf("Subscribe(after=%q) = %v, want ErrBadCursor", after, err)
			}
		}
		// A cursor beyond the end is valid: it waits for later events.
		ch := subscribe(t, b, "lab.results", "0-0")
		want := publishN(t, b, "lab.results", 0, 1)
		sameEvents(t, take(t, ch, 1), want)
	})
}

func TestIDs(t *testing.T) {
	for id, want := range map[string]bool{
		"0-0": true, "1700000000000-0": true, "1700000000000-42": true, "18446744073709551615-18446744073709551615": true,
		"": false, "1": false, "1-": false, "-0": false, "a-b": false, "1-2-3": false, "1_0": false, "1-0 ": false,
	} {
		if got := ValidID(id); got != want {
			t.Errorf("ValidID(%q) = %v, want %v", id, got, want)
		}
	}
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"1-0", "1-0", 0},
		{"2-0", "10-0", -1}, // numeric, not lexical
		{"10-0", "9-99", 1},
		{"5-2", "5-10", -1},
		{"5-10", "5-2", 1},
		{"bad", "0-0", -1},
		{"0-0", "bad", 1},
	} {
		if got := CompareIDs(c.a, c.b); got != c.want {
			t.Errorf("CompareIDs(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}

func TestMemoryRetention(t *testing.T) {
	b := NewMemoryBroker(3)
	t.Cleanup(func() { b.Close() })
	evs := publishN(t, b, "lab.results", 0, 5)
	// evs[0] and evs[1] are gone: a cursor before either has missed them.
	for _, after := range []string{"0-0", evs[0].ID} {
		if _, err := b.Subscribe(context.Background(), "lab.results", after); !errors.Is(err, ErrCursorExpired) {
			t.Fatalf("Subscribe(after=%s) = %v, want ErrCursorExpired", after, err)
		}
	}
	ch := subscribe(t, b, "lab.results", evs[1].ID)
	sameEvents(t, take(t, ch, 3), evs[2:])
	quiet(t, ch)

	// The ring keeps wrapping correctly, and a cursor inside it still works.
	evs = append(evs, publishN(t, b, "lab.results", 5, 4)...)
	sameEvents(t, take(t, ch, 4), evs[5:])
	from := subscribe(t, b, "lab.results", evs[6].ID)
	sameEvents(t, take(t, from, 2), evs[7:])
	if _, err := b.Subscribe(context.Background(), "lab.results", evs[4].ID); !errors.Is(err, ErrCursorExpired) {
		t.Fatalf("Subscribe(after=%s) = %v, want ErrCursorExpired", evs[4].ID, err)
	}
}

// The memory broker stamps IDs itself, so it must keep them increasing when
// many events share a millisecond or the clock steps back.
func TestMemoryIDsStayIncreasing(t *testing.T) {
	b := NewMemoryBroker(10)
	t.Cleanup(func() { b.Close() })
	b.mu.Lock()
	b.topic("t").last = eventID{ms: uint64(time.Now().Add(time.Hour).UnixMilli()), seq: 7}
	future := b.topics["t"].last
	b.mu.Unlock()
	evs := publishN(t, b, "t", 0, 3)
	for i, ev := range evs {
		want := eventID{future.ms, future.seq + 1 + uint64(i)}.String()
		if ev.ID != want {
			t.Fatalf("event %d ID = %s, want %s", i, ev.ID, want)
		}
	}
}

func TestCancelClosesChannel(t *testing.T) {
	forEachBroker(t, func(t *testing.T, b Broker) {
		ctx, cancel := context.WithCancel(context.Background())
		ch, err := b.Subscribe(ctx, "lab.results", "")
		if err != nil {
			t.Fatal(err)
		}
		publishN(t, b, "lab.results", 0, 1)
		take(t, ch, 1)
		cancel()
		drainUntilClosed(t, ch)
		if rb, ok := b.(*RedisBroker); ok {
			waitUntil(t, "the topic reader stops", func() bool {
				rb.mu.Lock()
				defer rb.mu.Unlock()
				return len(rb.readers) == 0
			})
		}
		// Publishing to a topic nobody watches any more still works.
		publishN(t, b, "lab.results", 1, 1)
	})
}

func TestCloseEndsEverything(t *testing.T) {
	run := func(t *testing.T, newBroker func() Broker) {
		before := runtime.NumGoroutine()
		b := newBroker()
		var chans []<-chan Event
		for i := range 6 {
			ch, err := b.Subscribe(context.Background(), fmt.Sprintf("topic.%d", i%2), "")
			if err != nil {
				t.Fatal(err)
			}
			chans = append(chans, ch)
		}
		publishN(t, b, "topic.0", 0, 3)
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		for _, ch := range chans {
			drainUntilClosed(t, ch)
		}
		if _, err := b.Publish(context.Background(), "topic.0", "tick", nil, ""); !errors.Is(err, ErrClosed) {
			t.Errorf("Publish after Close = %v, want ErrClosed", err)
		}
		if _, err := b.Subscribe(context.Background(), "topic.0", ""); !errors.Is(err, ErrClosed) {
			t.Errorf("Subscribe after Close = %v, want ErrClosed", err)
		}
		// Close has waited for the broker's goroutines; what may remain is
		// the runtime's own and the Redis client's connection pool.
		waitUntil(t, "goroutines end", func() bool { return runtime.NumGoroutine() <= before })
	}
	t.Run("memory", func(t *testing.T) {
		run(t, func() Broker { return NewMemoryBroker(10) })
	})
	t.Run("redis", func(t *testing.T) {
		client, prefix := testenv.Redis(t)
		if client == nil {
			t.Skip("HMIS_TEST_REDIS_URL is not set")
		}
		run(t, func() Broker { return newTestRedisBroker(client, prefix) })
	})
}

// A subscriber that stops reading is cut off instead of holding up the
// publisher, after a contiguous prefix, and resumes from its last event.
func TestSlowSubscriberIsDroppedAndResumes(t *testing.T) {
	const total = SubscriberBuffer + 100
	forEachBroker(t, func(t *testing.T, b Broker) {
		ch := subscribe(t, b, "vitals", "")
		want := publishN(t, b, "vitals", 0, total)
		if rb, ok := b.(*RedisBroker); ok {
			// Its reader hands events over a little after they are
			// published; reading before it has would let the subscriber
			// keep up.
			waitUntil(t, "the subscriber is dropped", func() bool {
				rb.mu.Lock()
				defer rb.mu.Unlock()
				return len(rb.readers) == 0
			})
		}
		got := drainUntilClosed(t, ch)
		if len(got) == 0 || len(got) >= total {
			t.Fatalf("slow subscriber got %d of %d events before being dropped", len(got), total)
		}
		sameEvents(t, got, want[:len(got)])
		rest := subscribe(t, b, "vitals", got[len(got)-1].ID)
		sameEvents(t, take(t, rest, total-len(got)), want[len(got):])
	})
}

func TestRedisAcrossInstances(t *testing.T) {
	client, prefix := testenv.Redis(t)
	if client == nil {
		t.Skip("HMIS_TEST_REDIS_URL is not set")
	}
	a := newTestRedisBroker(client, prefix)
	t.Cleanup(func() { a.Close() })
	b := newTestRedisBroker(client, prefix)
	t.Cleanup(func() { b.Close() })
	if err := b.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	onB := subscribe(t, b, "lab.results", "")
	want := publishN(t, a, "lab.results", 0, 3)
	sameEvents(t, take(t, onB, 3), want)
	// And the other way round, replaying what A published.
	onA := subscribe(t, a, "lab.results", "0-0")
	sameEvents(t, take(t, onA, 3), want)
	quiet(t, onB)
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
