// Package events carries domain events from the transaction that caused them
// to the clients that watch for them. A domain service records an event in
// the outbox inside its own transaction (Record), so an event exists if and
// only if its change committed; the Relay publishes committed outbox rows to
// a Broker; subscription resolvers stream a topic from the Broker.
//
// The Broker is Redis Streams when Redis is configured, so that every server
// process sees every event, and an in-process ring buffer otherwise. Both
// give events the same IDs ("<unix-ms>-<seq>", ordered within a topic) and
// the same resumable subscriptions: a client that lost its stream subscribes
// again with the last ID it saw and misses nothing still retained, or is
// told (ErrCursorExpired) that what it missed is no longer retained.
//
// Each outbox row becomes exactly one event, whatever point a relay or its
// process dies at: the broker knows the events by their outbox row ID, so
// publishing a row again returns the event it already made. The in-process
// broker also holds the relay's events back until their rows are marked
// published, and is rebuilt from the outbox at start (Restore), so that an
// event a client saw survives a restart under the ID the client saw.
package events

import (
	"context"
	"errors"
	"math"
	"strconv"
	"strings"
	"time"
)

// Event is a published domain event.
type Event struct {
	// ID is assigned by the broker: "<unix-ms>-<seq>", increasing within a
	// topic (the format of Redis stream IDs).
	ID      string
	Topic   string
	Type    string
	Payload []byte    // JSON
	Time    time.Time // UTC, when published: the millisecond of the ID
}

// Broker is implemented by MemoryBroker and RedisBroker.
type Broker interface {
	// Publish appends an event to topic and returns it with its ID.
	//
	// key, when not empty, names what the event is of (the outbox row's
	// ID) and makes publishing idempotent: publishing a key the topic
	// already has an event for publishes nothing and returns that event,
	// with its ID. The broker remembers the keys of the events it retains,
	// and of a topic's newest MinKeys events however few it retains.
	Publish(ctx context.Context, topic, typ string, payload []byte, key string) (Event, error)
	// Subscribe streams the events of topic whose ID is greater than after:
	// first those still retained, then live ones as they are published, in
	// order, with no gap and no duplicate, until ctx is done (then the channel
	// closes). after == "" means only events published from now on.
	// A malformed after returns ErrBadCursor; an after older than the
	// retained history, from which events are gone that the subscriber
	// has not seen, returns ErrCursorExpired rather than a stream with a
	// hole in it.
	//
	// The channel also closes when the subscriber falls too far behind (see
	// SubscriberBuffer), when the broker is closed, or when the broker can no
	// longer read the topic. A client then subscribes again with the ID of
	// the last event it received and continues where it stopped.
	Subscribe(ctx context.Context, topic, after string) (<-chan Event, error)
	Ping(ctx context.Context) error
	// Close ends every subscription and stops the broker's goroutines. It
	// does not close a Redis client, which belongs to the caller.
	Close() error
}

var (
	// ErrBadCursor is returned by Subscribe for an after that is not an event ID.
	ErrBadCursor = errors.New("events: malformed cursor: want an event ID \"<ms>-<seq>\"")
	// ErrCursorExpired is returned by Subscribe for an after that events
	// no longer retained follow: the subscriber has missed them for good,
	// and must reload what it shows and subscribe again without after.
	ErrCursorExpired = errors.New("events: cursor expired: events after it are no longer retained")
	// ErrClosed is returned by a broker that has been closed.
	ErrClosed = errors.New("events: broker closed")
	// errNoTopic guards the Redis key space and keeps every topic addressable.
	errNoTopic = errors.New("events: empty topic")
	// errIDsExhausted cannot happen in practice; it is here so
	// that IDs never wrap around and go backwards.
	errIDsExhausted = errors.New("events: topic has no event IDs left")
)

// DefaultRetain is the number of events kept per topic when a broker is
// created with a retain below 1.
const DefaultRetain = 10000

// MinKeys is the fewest publication keys a broker remembers per topic,
// however small its retention: a relay re-publishes at most one batch of
// rows after a crash, and each must find its event again.
const MinKeys = 1000

// SubscriberBuffer is how many live events a subscriber may lag behind its
// topic. A publisher never waits for a subscriber: one whose buffer is full
// is dropped and its channel closed, and it catches up by subscribing again
// with the last ID it received, replaying from what the broker retains.
const SubscriberBuffer = 256

// eventID is a parsed "<ms>-<seq>" ID.
type eventID struct{ ms, seq uint64 }

func parseID(s string) (eventID, bool) {
	msPart, seqPart, ok := strings.Cut(s, "-")
	if !ok {
		return eventID{}, false
	}
	ms, err := strconv.ParseUint(msPart, 10, 64)
	if err != nil {
		return eventID{}, false
	}
	seq, err := strconv.ParseUint(seqPart, 10, 64)
	if err != nil {
		return eventID{}, false
	}
	return eventID{ms, seq}, true
}

func (id eventID) String() string {
	return strconv.FormatUint(id.ms, 10) + "-" + strconv.FormatUint(id.seq, 10)
}

func (id eventID) compare(o eventID) int {
	switch {
	case id.ms < o.ms:
		return -1
	case id.ms > o.ms:
		return 1
	case id.seq < o.seq:
		return -1
	case id.seq > o.seq:
		return 1
	}
	return 0
}

// next returns the smallest ID greater than id, and false if there is none.
func (id eventID) next() (eventID, bool) {
	switch {
	case id.seq < math.MaxUint64:
		return eventID{id.ms, id.seq + 1}, true
	case id.ms < math.MaxUint64:
		return eventID{id.ms + 1, 0}, true
	}
	return eventID{}, false
}

// ValidID reports whether id is a well-formed event ID.
func ValidID(id string) bool {
	_, ok := parseID(id)
	return ok
}

// CompareIDs compares two event IDs numerically, returning -1, 0 or +1.
// A malformed ID sorts before every well-formed one.
func CompareIDs(a, b string) int {
	x, okA := parseID(a)
	y, okB := parseID(b)
	switch {
	case okA && okB:
		return x.compare(y)
	case okA:
		return 1
	case okB:
		return -1
	}
	return strings.Compare(a, b)
}

// subscriber is one Subscribe call as the publishing side sees it: a buffer
// of live events. Whoever removes it from its topic closes live, under the
// broker's lock, so that a send never meets a closed channel.
type subscriber struct {
	live chan Event
}

func newSubscriber() *subscriber {
	return &subscriber{live: make(chan Event, SubscriberBuffer)}
}

// offer hands ev to s without waiting and reports whether s kept up.
func (s *subscriber) offer(ev Event) bool {
	select {
	case s.live <- ev:
		return true
	default:
		return false
	}
}

// feed is the subscriber's side: it delivers events to out in ID order,
// never one at or before the last delivered. Replayed history and live
// events can overlap (Redis reads them separately); this is where the
// overlap is dropped.
type feed struct {
	out  chan Event
	last eventID
}

// send delivers ev unless it was already delivered; false means ctx ended.
func (f *feed) send(ctx context.Context, ev Event) bool {
	id, ok := parseID(ev.ID)
	if !ok || id.compare(f.last) <= 0 {
		return true
	}
	select {
	case f.out <- ev:
		f.last = id
		return true
	case <-ctx.Done():
		return false
	}
}

// follow delivers live events until live closes or ctx ends.
func (f *feed) follow(ctx context.Context, live <-chan Event) {
	for {
		select {
		case ev, ok := <-live:
			if !ok || !f.send(ctx, ev) {
				return
			}
		case <-ctx.Done():
			return
		}
	}
}
