package events

import (
	"context"
	"sort"
	"sync"
	"time"
)

// MemoryBroker is a Broker inside this process: per topic, a ring buffer of
// the most recent events and the live subscribers. It is for a single server
// process (the embedded default); processes do not see each other's events.
type MemoryBroker struct {
	retain int
	base   context.Context // ends on Close, which every subscription watches
	stop   context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	closed bool
	topics map[string]*memoryTopic
}

type memoryTopic struct {
	ring []stored // in ID order starting at head once it has wrapped
	head int
	last eventID
	subs map[*subscriber]struct{}
}

type stored struct {
	id eventID
	ev Event
}

// NewMemoryBroker returns a broker that keeps the last retain events of each
// topic for replay (DefaultRetain if retain < 1).
func NewMemoryBroker(retain int) *MemoryBroker {
	if retain < 1 {
		retain = DefaultRetain
	}
	base, stop := context.WithCancel(context.Background())
	return &MemoryBroker{retain: retain, base: base, stop: stop, topics: map[string]*memoryTopic{}}
}

func (b *MemoryBroker) topic(name string) *memoryTopic {
	t := b.topics[name]
	if t == nil {
		t = &memoryTopic{subs: map[*subscriber]struct{}{}}
		b.topics[name] = t
	}
	return t
}

func (t *memoryTopic) push(e stored, retain int) {
	if len(t.ring) < retain {
		t.ring = append(t.ring, e)
		return
	}
	t.ring[t.head] = e
	t.head = (t.head + 1) % retain
}

func (t *memoryTopic) at(i int) stored { return t.ring[(t.head+i)%len(t.ring)] }

// since returns a copy of the retained events after from.
func (t *memoryTopic) since(from eventID) []Event {
	n := len(t.ring)
	first := sort.Search(n, func(i int) bool { return t.at(i).id.compare(from) > 0 })
	out := make([]Event, 0, n-first)
	for i := first; i < n; i++ {
		out = append(out, t.at(i).ev)
	}
	return out
}

// Publish appends an event to topic and offers it to the topic's
// subscribers; it never waits for them. The payload is copied, and
// subscribers must treat the Payload they receive as read-only: it is shared.
func (b *MemoryBroker) Publish(_ context.Context, topic, typ string, payload []byte) (Event, error) {
	if topic == "" {
		return Event{}, errNoTopic
	}
	now := time.Now().UTC()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return Event{}, ErrClosed
	}
	t := b.topic(topic)
	id := eventID{}
	if ms := now.UnixMilli(); ms > 0 {
		id.ms = uint64(ms)
	}
	// Like Redis: if the clock stood still or went back, stay on the last
	// millisecond and count up, so IDs keep increasing.
	if id.compare(t.last) <= 0 {
		next, ok := t.last.next()
		if !ok {
			return Event{}, errIDsExhausted
		}
		id = next
	}
	t.last = id
	ev := Event{ID: id.String(), Topic: topic, Type: typ, Payload: append([]byte(nil), payload...), Time: now}
	t.push(stored{id: id, ev: ev}, b.retain)
	for s := range t.subs {
		if !s.offer(ev) {
			delete(t.subs, s)
			close(s.live)
		}
	}
	return ev, nil
}

// Subscribe implements Broker. The retained history is copied and the
// subscriber registered under one lock, so nothing published meanwhile can
// fall between the two.
func (b *MemoryBroker) Subscribe(ctx context.Context, topic, after string) (<-chan Event, error) {
	var from eventID
	if after != "" {
		var ok bool
		if from, ok = parseID(after); !ok {
			return nil, ErrBadCursor
		}
	}
	if topic == "" {
		return nil, errNoTopic
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, ErrClosed
	}
	t := b.topic(topic)
	if after == "" {
		from = t.last
	}
	history := t.since(from)
	s := newSubscriber()
	t.subs[s] = struct{}{}
	b.wg.Add(1)
	b.mu.Unlock()

	f := &feed{out: make(chan Event), last: from}
	go func() {
		defer b.wg.Done()
		defer close(f.out)
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		defer context.AfterFunc(b.base, cancel)()
		defer b.unsubscribe(topic, s)
		for _, ev := range history {
			if !f.send(ctx, ev) {
				return
			}
		}
		f.follow(ctx, s.live)
	}()
	return f.out, nil
}

func (b *MemoryBroker) unsubscribe(topic string, s *subscriber) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.topics[topic]
	if t == nil {
		return
	}
	if _, ok := t.subs[s]; ok {
		delete(t.subs, s)
		close(s.live)
	}
	// A topic nobody published to would otherwise stay forever.
	if len(t.subs) == 0 && len(t.ring) == 0 {
		delete(b.topics, topic)
	}
}

// Ping reports whether the broker is open.
func (b *MemoryBroker) Ping(context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ErrClosed
	}
	return nil
}

// Close ends every subscription and waits for their goroutines.
func (b *MemoryBroker) Close() error {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		for _, t := range b.topics {
			for s := range t.subs {
				delete(t.subs, s)
				close(s.live)
			}
		}
	}
	b.mu.Unlock()
	b.stop()
	b.wg.Wait()
	return nil
}
