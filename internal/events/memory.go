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
//
// Its events die with the process, so two things keep them exactly once
// across a crash. The relay stages its events (stage) and releases them only
// once their outbox rows are marked published: no subscriber sees an event
// the outbox might publish again under another ID. And at start Restore
// loads back what the outbox says was published, under the same IDs.
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
	last eventID // the newest ID given out, staged or not
	// shown is the newest event subscribers can see; dropped, the newest
	// that fell out of the ring (zero while none has). A cursor before
	// dropped has missed events for good.
	shown, dropped eventID
	// staged are events given an ID but not yet delivered, in ID order;
	// those ready go out as soon as everything before them has.
	staged []staging
	// keys finds the event published for a key; order is the keys'
	// ring, so that they are forgotten oldest first.
	keys     map[string]Event
	order    []keyed
	keysHead int
	subs     map[*subscriber]struct{}
}

type stored struct {
	id eventID
	ev Event
}

type keyed struct{ key, id string }

type staging struct {
	stored
	key   string
	ready bool
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
		t = &memoryTopic{subs: map[*subscriber]struct{}{}, keys: map[string]Event{}}
		b.topics[name] = t
	}
	return t
}

func (t *memoryTopic) push(e stored, retain int) {
	if len(t.ring) < retain {
		t.ring = append(t.ring, e)
		return
	}
	t.dropped = t.ring[t.head].id
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

// remember records ev as key's event, forgetting the oldest key once the
// topic holds capacity of them.
func (t *memoryTopic) remember(key string, ev Event, capacity int) {
	k := keyed{key: key, id: ev.ID}
	if len(t.order) < capacity {
		t.order = append(t.order, k)
	} else {
		// Unless the key was discarded and published again since.
		if old := t.order[t.keysHead]; t.keys[old.key].ID == old.id {
			delete(t.keys, old.key)
		}
		t.order[t.keysHead] = k
		t.keysHead = (t.keysHead + 1) % capacity
	}
	t.keys[key] = ev
}

// deliver moves the ready events at the front of the staged ones into the
// ring and offers them to the subscribers, in ID order.
func (t *memoryTopic) deliver(retain int) {
	n := 0
	for n < len(t.staged) && t.staged[n].ready {
		e := t.staged[n].stored
		t.push(e, retain)
		t.shown = e.id
		for s := range t.subs {
			if !s.offer(e.ev) {
				delete(t.subs, s)
				close(s.live)
			}
		}
		n++
	}
	t.staged = append(t.staged[:0], t.staged[n:]...)
}

// add gives an event its ID and stages it; ready ones are delivered once
// those staged before them are. A key already known returns its event.
func (b *MemoryBroker) add(topic, typ string, payload []byte, key string, ready bool) (Event, error) {
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
	if ev, ok := t.keys[key]; ok && key != "" {
		if ready {
			for i := range t.staged {
				if t.staged[i].key == key {
					t.staged[i].ready = true
				}
			}
			t.deliver(b.retain)
		}
		return ev, nil
	}
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
	// Timed by the ID, as on Redis, so that a restored event keeps its time.
	ev := Event{ID: id.String(), Topic: topic, Type: typ, Payload: append([]byte(nil), payload...), Time: idTime(id)}
	if key != "" {
		t.remember(key, ev, max(b.retain, MinKeys))
	}
	t.staged = append(t.staged, staging{stored: stored{id: id, ev: ev}, key: key, ready: ready})
	t.deliver(b.retain)
	return ev, nil
}

// Publish appends an event to topic and offers it to the topic's
// subscribers; it never waits for them. The payload is copied, and
// subscribers must treat the Payload they receive as read-only: it is shared.
func (b *MemoryBroker) Publish(_ context.Context, topic, typ string, payload []byte, key string) (Event, error) {
	return b.add(topic, typ, payload, key, true)
}

// stage gives the event of an outbox row its ID without delivering it: the
// relay releases it once the row is marked published with that ID. Staging
// the key again, after a failed round, returns the same event.
func (b *MemoryBroker) stage(_ context.Context, topic, typ string, payload []byte, key string) (Event, error) {
	return b.add(topic, typ, payload, key, false)
}

// release delivers the staged events of the given keys, which the relay has
// marked published, and drops those of the keys in discard, whose rows are
// gone or were published elsewhere. A staged event waits for every event
// staged before it in its topic.
func (b *MemoryBroker) release(keys, discard []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(keys)+len(discard) == 0 {
		return
	}
	ok := make(map[string]bool, len(keys)+len(discard))
	for _, k := range keys {
		ok[k] = true
	}
	for _, k := range discard {
		ok[k] = false
	}
	for _, t := range b.topics {
		kept := t.staged[:0]
		for _, e := range t.staged {
			publish, named := ok[e.key]
			switch {
			case !named || e.key == "":
				kept = append(kept, e)
			case publish:
				e.ready = true
				kept = append(kept, e)
			default:
				delete(t.keys, e.key)
			}
		}
		clear(t.staged[len(kept):])
		t.staged = kept
		t.deliver(b.retain)
	}
}

// staged returns the events staged and not yet released: key → ID.
func (b *MemoryBroker) staged() map[string]string {
	b.mu.Lock()
	defer b.mu.Unlock()
	keys := map[string]string{}
	for _, t := range b.topics {
		for _, e := range t.staged {
			if !e.ready && e.key != "" {
				keys[e.key] = e.ev.ID
			}
		}
	}
	return keys
}

// restore replaces a topic's history with evs, in ID order, as published
// before this process started; dropped is the newest event of the topic
// known to be missing from evs (zero if none is). Only the newest retain
// are kept.
func (b *MemoryBroker) restore(topic string, evs []Event, dropped eventID) error {
	if topic == "" {
		return errNoTopic
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ErrClosed
	}
	t := &memoryTopic{subs: map[*subscriber]struct{}{}, keys: map[string]Event{}, dropped: dropped}
	if old := b.topics[topic]; old != nil {
		t.subs = old.subs
	}
	for _, ev := range evs {
		id, ok := parseID(ev.ID)
		if !ok || id.compare(t.last) <= 0 {
			continue
		}
		ev.Time = idTime(id)
		t.push(stored{id: id, ev: ev}, b.retain)
		t.last, t.shown = id, id
	}
	b.topics[topic] = t
	return nil
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
		from = t.shown
	} else if from.compare(t.dropped) < 0 {
		b.mu.Unlock()
		return nil, ErrCursorExpired
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
	if len(t.subs) == 0 && len(t.ring) == 0 && len(t.staged) == 0 && len(t.keys) == 0 && t.last == (eventID{}) {
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
