package events

import (
	"context"
	"sync"
)

// Hub fans the events of a topic out to the subscribers of this process. It
// subscribes to the broker once per topic, however many subscribers the
// topic has, and hands each event to every subscriber in one Delivery, on
// which what the event is about can be loaded once and shared (see Shared)
// instead of once per subscriber.
//
// A subscriber resuming from a cursor older than where the topic's stream
// stands reads the broker's retained history on a subscription of its own
// and joins the topic's stream once it has caught up with it; the broker's
// history is the hub's history.
type Hub struct {
	broker Broker
	// workers bounds how many goroutines hand one event to the subscribers.
	workers int

	mu     sync.Mutex
	topics map[string]*hubTopic
}

// NewHub returns a hub over b.
func NewHub(b Broker) *Hub {
	return &Hub{broker: b, workers: hubWorkers, topics: map[string]*hubTopic{}}
}

// hubWorkers: handing an event on costs each subscriber mostly a wait on
// the credential cache and on the shared load, so several run at once.
const hubWorkers = 16

// Member is one subscriber of a hub topic.
type Member interface {
	// Deliver hands the member an event. It is called for the events after
	// the member's cursor, in ID order, never concurrently for one member,
	// and must not wait for the member's client: a member that cannot keep
	// up ends itself.
	Deliver(d *Delivery)
	// Interrupted tells the member that its topic's stream ended: the
	// broker was closed, or could not be read again.
	Interrupted()
}

// Delivery is one event as it is handed to the subscribers of its topic.
type Delivery struct {
	Event Event

	mu   sync.Mutex
	memo map[string]*sharedValue
}

type sharedValue struct {
	done chan struct{}
	v    any
	err  error
}

// NewDelivery returns a delivery of ev whose shared values only its own
// recipients see: a subscriber replaying history gets one per event.
func NewDelivery(ev Event) *Delivery { return &Delivery{Event: ev} }

// Shared returns what load returns for key, calling it once per delivery
// whichever recipients ask: the others wait for that call and get its
// result. key must name everything the result depends on besides the
// event, such as the row scope it was loaded with.
func Shared[V any](d *Delivery, key string, load func() (V, error)) (V, error) {
	d.mu.Lock()
	if d.memo == nil {
		d.memo = map[string]*sharedValue{}
	}
	s, ok := d.memo[key]
	if !ok {
		s = &sharedValue{done: make(chan struct{})}
		d.memo[key] = s
	}
	d.mu.Unlock()
	if ok {
		<-s.done
	} else {
		func() {
			// A panicking load must not leave the others waiting.
			defer close(s.done)
			s.v, s.err = load()
		}()
	}
	v, _ := s.v.(V)
	return v, s.err
}

type hubTopic struct {
	name   string
	ctx    context.Context
	cancel context.CancelFunc
	// ready closes once the topic's broker subscription is open; err is
	// set before that if it could not be opened.
	ready chan struct{}
	err   error
	src   <-chan Event

	// Guarded by Hub.mu.
	last       eventID // the last event handed on
	dispatched bool    // whether any was: before that, last means nothing
	members    map[Member]eventID
	catchingUp int
	stopped    bool
}

// Subscribe makes m a subscriber of topic from after ("": from now on,
// as Broker.Subscribe). m gets the events after that, in order, until it
// calls the returned leave, or its topic is interrupted. ctx bounds the
// subscription's setup and its catching up.
func (h *Hub) Subscribe(ctx context.Context, topic, after string, m Member) (leave func(), err error) {
	var from eventID
	if after != "" {
		var ok bool
		if from, ok = parseID(after); !ok {
			return nil, ErrBadCursor
		}
	}
	var t *hubTopic
	for {
		if t, err = h.open(ctx, topic); err != nil {
			return nil, err
		}
		h.mu.Lock()
		if !t.stopped {
			break
		}
		// Its last subscriber left meanwhile: open it anew.
		h.mu.Unlock()
	}
	switch {
	case after == "":
		// The topic's stream has been open since before this call, so
		// it holds everything from now on.
		t.members[m] = t.last
	case !t.dispatched || from.compare(t.last) < 0:
		// Behind the stream, or the stream's start is unknown: catch
		// up on a subscription of one's own first.
		t.catchingUp++
		h.mu.Unlock()
		return h.catchUp(ctx, t, after, m)
	default:
		t.members[m] = from
	}
	h.mu.Unlock()
	return func() { h.leave(t, m) }, nil
}

// open returns topic's entry, opening its broker subscription if it has none.
func (h *Hub) open(ctx context.Context, topic string) (*hubTopic, error) {
	h.mu.Lock()
	t := h.topics[topic]
	if t == nil {
		tctx, cancel := context.WithCancel(context.Background())
		t = &hubTopic{name: topic, ctx: tctx, cancel: cancel, ready: make(chan struct{}), members: map[Member]eventID{}}
		h.topics[topic] = t
		h.mu.Unlock()
		t.src, t.err = h.broker.Subscribe(tctx, topic, "")
		if t.err != nil {
			h.mu.Lock()
			h.stop(t)
			h.mu.Unlock()
		} else {
			go h.run(t)
		}
		close(t.ready)
	} else {
		h.mu.Unlock()
	}
	select {
	case <-t.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if t.err != nil {
		return nil, t.err
	}
	return t, nil
}

// catchUp hands m the events after after from a broker subscription of
// its own, each in a delivery of its own, until m has reached the topic's
// stream; then m joins it. A topic with a steady flow of events is
// reached at its next event.
func (h *Hub) catchUp(ctx context.Context, t *hubTopic, after string, m Member) (func(), error) {
	ctx, cancel := context.WithCancel(ctx)
	src, err := h.broker.Subscribe(ctx, t.name, after)
	if err != nil {
		cancel()
		h.mu.Lock()
		t.catchingUp--
		h.maybeStop(t)
		h.mu.Unlock()
		return nil, err
	}
	cursor, _ := parseID(after)
	var (
		mu     sync.Mutex
		joined bool
		left   bool
	)
	go func() {
		defer cancel()
		for ev := range src {
			id, _ := parseID(ev.ID)
			m.Deliver(NewDelivery(ev))
			cursor = id
			h.mu.Lock()
			if t.dispatched && cursor.compare(t.last) >= 0 && !t.stopped {
				mu.Lock()
				if !left {
					t.members[m] = cursor
					joined = true
				}
				mu.Unlock()
				t.catchingUp--
				h.maybeStop(t)
				h.mu.Unlock()
				return
			}
			h.mu.Unlock()
		}
		// Ended before catching up: left, or the broker gave up on it.
		h.mu.Lock()
		t.catchingUp--
		h.maybeStop(t)
		h.mu.Unlock()
		mu.Lock()
		interrupted := !left && ctx.Err() == nil
		mu.Unlock()
		if interrupted {
			m.Interrupted()
		}
	}()
	return func() {
		mu.Lock()
		left = true
		wasJoined := joined
		mu.Unlock()
		cancel()
		if wasJoined {
			h.leave(t, m)
		}
	}, nil
}

func (h *Hub) leave(t *hubTopic, m Member) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(t.members, m)
	h.maybeStop(t)
}

// maybeStop stops t once nobody follows it; the caller holds h.mu.
func (h *Hub) maybeStop(t *hubTopic) {
	if len(t.members) == 0 && t.catchingUp == 0 {
		h.stop(t)
	}
}

// stop ends t's broker subscription; the caller holds h.mu. A later
// subscriber opens the topic anew.
func (h *Hub) stop(t *hubTopic) {
	t.stopped = true
	if h.topics[t.name] == t {
		delete(h.topics, t.name)
	}
	t.cancel()
}

// run hands each event of t's stream to t's members.
func (h *Hub) run(t *hubTopic) {
	var batch []Member
	for {
		ev, ok := <-t.src
		if !ok {
			if t.ctx.Err() != nil {
				return
			}
			if !h.resume(t) {
				return
			}
			continue
		}
		id, ok := parseID(ev.ID)
		if !ok {
			continue
		}
		h.mu.Lock()
		t.last, t.dispatched = id, true
		batch = batch[:0]
		for m, from := range t.members {
			if id.compare(from) > 0 {
				batch = append(batch, m)
			}
		}
		h.mu.Unlock()
		h.deliver(NewDelivery(ev), batch)
	}
}

// resume reopens t's stream after the broker dropped it (it fell behind,
// or Redis failed), from the last event handed on, so members notice
// nothing. If it cannot, every member is told its stream was interrupted.
func (h *Hub) resume(t *hubTopic) bool {
	h.mu.Lock()
	after := ""
	if t.dispatched {
		after = t.last.String()
	}
	h.mu.Unlock()
	var err error
	if after != "" {
		t.src, err = h.broker.Subscribe(t.ctx, t.name, after)
	}
	if after != "" && err == nil {
		return true
	}
	h.mu.Lock()
	members := make([]Member, 0, len(t.members))
	for m := range t.members {
		members = append(members, m)
	}
	clear(t.members)
	h.stop(t)
	h.mu.Unlock()
	for _, m := range members {
		m.Interrupted()
	}
	return false
}

// deliver hands d to members, several at a time, and returns when all have
// had it, so that the next event comes after it for every one of them.
func (h *Hub) deliver(d *Delivery, members []Member) {
	n := min(h.workers, len(members))
	if n <= 1 {
		for _, m := range members {
			m.Deliver(d)
		}
		return
	}
	var wg sync.WaitGroup
	per := (len(members) + n - 1) / n
	for lo := 0; lo < len(members); lo += per {
		part := members[lo:min(lo+per, len(members))]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, m := range part {
				m.Deliver(d)
			}
		}()
	}
	wg.Wait()
}
