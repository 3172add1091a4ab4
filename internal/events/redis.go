package events

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	// defaultReadBlock bounds one XREAD wait. go-redis cannot interrupt a
	// blocked read when its context is cancelled, so this is also how long
	// a reader may linger after its last subscriber leaves or Close is called.
	defaultReadBlock = time.Second
	// readBatch and historyPage bound one reply, so that a long backlog is
	// read in steps rather than in one large allocation.
	readBatch   = 256
	historyPage = 512
)

// RedisBroker is a Broker on Redis Streams, one stream per topic, so that
// every server process sees every event and a subscriber can resume on any
// of them.
//
// A process reads each topic its clients watch with a single reader
// goroutine that fans events out to the local subscribers, instead of one
// blocking Redis call per subscriber. That reader holds one connection of
// the client's pool while it waits: size the pool for the number of topics
// watched at once, plus the ordinary traffic.
type RedisBroker struct {
	client *redis.Client
	prefix string
	retain int64
	block  time.Duration
	base   context.Context // ends on Close; readers and subscriptions derive from it
	stop   context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	closed  bool
	readers map[string]*streamReader
}

// streamReader is the one reader of a topic's stream in this process.
type streamReader struct {
	topic, key string
	ctx        context.Context
	cancel     context.CancelFunc
	// ready closes once the reader knows where it starts; err is set
	// before that if it could not find out.
	ready chan struct{}
	err   error
	subs  map[*subscriber]struct{}
}

// NewRedisBroker returns a broker keeping topics in client under the keys
// prefix+"events:"+topic, each trimmed to between retain and retain+100
// events (DefaultRetain if retain < 1), with the publication keys beside
// them. The client stays the caller's to close.
func NewRedisBroker(client *redis.Client, prefix string, retain int64) *RedisBroker {
	if retain < 1 {
		retain = DefaultRetain
	}
	base, stop := context.WithCancel(context.Background())
	return &RedisBroker{
		client:  client,
		prefix:  prefix,
		retain:  retain,
		block:   defaultReadBlock,
		base:    base,
		stop:    stop,
		readers: map[string]*streamReader{},
	}
}

func (b *RedisBroker) key(topic string) string { return b.prefix + "events:" + topic }

func (b *RedisBroker) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}

// publishScript appends an event to a stream unless its key already has
// one, and records which ID the key got, all in one step: a relay that
// dies after Redis accepted an event and before it marked the outbox row
// gets the same event back when the row is published again.
//
// It also trims the stream, exactly rather than with MAXLEN ~ (which loses
// track of what it removed), and records the newest ID it removed: a
// cursor before that has missed events (see historyScript). It trims only
// once trimSlack entries are over, so as to trim in batches.
//
// KEYS: the stream, the key → ID hash, the list of keys oldest first, the
// newest trimmed ID. ARGV: key ("" for none), retain, type, payload, how
// many keys to keep, trimSlack. The keys are trimmed by count, like the
// stream, but never to fewer than MinKeys, so that a relay's whole batch
// finds its events again.
var publishScript = redis.NewScript(`
if ARGV[1] ~= '' then
  local id = redis.call('HGET', KEYS[2], ARGV[1])
  if id then return id end
end
local id = redis.call('XADD', KEYS[1], '*', 'type', ARGV[3], 'payload', ARGV[4])
local excess = redis.call('XLEN', KEYS[1]) - tonumber(ARGV[2])
if excess >= tonumber(ARGV[6]) then
  local gone = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', excess)
  redis.call('SET', KEYS[4], gone[#gone][1])
  redis.call('XTRIM', KEYS[1], 'MAXLEN', ARGV[2])
end
if ARGV[1] ~= '' then
  redis.call('HSET', KEYS[2], ARGV[1], id)
  redis.call('RPUSH', KEYS[3], ARGV[1])
  local over = redis.call('LLEN', KEYS[3]) - tonumber(ARGV[5])
  while over > 0 do
    redis.call('HDEL', KEYS[2], redis.call('LPOP', KEYS[3]))
    over = over - 1
  end
end
return id
`)

// trimSlack is how far past its retention a stream grows before it is
// trimmed back: Redis's own stream node size.
const trimSlack = 100

// Publish appends the event with XADD, trimming the stream to retain events
// every trimSlack events; with a key, only if the key has no event yet (see
// publishScript).
func (b *RedisBroker) Publish(ctx context.Context, topic, typ string, payload []byte, key string) (Event, error) {
	if topic == "" {
		return Event{}, errNoTopic
	}
	if b.isClosed() {
		return Event{}, ErrClosed
	}
	keys := []string{b.key(topic), b.keysKey(topic), b.prefix + "events-key-order:" + topic, b.trimmedKey(topic)}
	id, err := publishScript.Run(ctx, b.client, keys, key, b.retain, typ, payload, max(b.retain+trimSlack, MinKeys), trimSlack).Text()
	if err != nil {
		return Event{}, fmt.Errorf("events: publish: %w", err)
	}
	parsed, ok := parseID(id)
	if !ok {
		return Event{}, fmt.Errorf("events: publish: unexpected stream ID %q", id)
	}
	return Event{ID: id, Topic: topic, Type: typ, Payload: payload, Time: idTime(parsed)}, nil
}

// The keys beside a topic's stream live outside the "events:" namespace,
// so that no topic name can make them collide with another topic's stream.
func (b *RedisBroker) keysKey(topic string) string    { return b.prefix + "events-keys:" + topic }
func (b *RedisBroker) trimmedKey(topic string) string { return b.prefix + "events-trimmed:" + topic }

// idTime is the publication time: Redis stamps an ID with its own clock, the
// one clock every process agrees on.
func idTime(id eventID) time.Time { return time.UnixMilli(int64(id.ms)).UTC() }

func streamEvent(topic string, m redis.XMessage) Event {
	id, _ := parseID(m.ID)
	typ, _ := m.Values["type"].(string)
	payload, _ := m.Values["payload"].(string)
	return Event{ID: m.ID, Topic: topic, Type: typ, Payload: []byte(payload), Time: idTime(id)}
}

// Subscribe implements Broker. The subscriber joins the topic's reader
// before it reads the history, so every event is in one or the other; the
// overlap between them is dropped by ID.
func (b *RedisBroker) Subscribe(ctx context.Context, topic, after string) (<-chan Event, error) {
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
	key := b.key(topic)
	if after == "" {
		// Resolved before joining, so that everything published once
		// Subscribe has returned comes after it.
		last, err := b.lastID(ctx, key)
		if err != nil {
			return nil, err
		}
		from = last
	}
	s := newSubscriber()
	r, err := b.join(topic, key, s)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (<-chan Event, error) {
		b.leave(r, s)
		return nil, err
	}
	select {
	case <-r.ready:
	case <-ctx.Done():
		return fail(ctx.Err())
	}
	if r.err != nil {
		return fail(r.err)
	}
	// The first page is read here, so that a Redis failure is an error
	// from Subscribe rather than a channel that closes at once.
	page, err := b.history(ctx, topic, from)
	if err != nil {
		return fail(err)
	}
	if !b.track() {
		return fail(ErrClosed)
	}

	f := &feed{out: make(chan Event), last: from}
	go func() {
		defer b.wg.Done()
		defer close(f.out)
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		defer context.AfterFunc(b.base, cancel)()
		defer b.leave(r, s)
		for {
			for _, ev := range page {
				if !f.send(ctx, ev) {
					return
				}
			}
			if len(page) < historyPage {
				break
			}
			var err error
			if page, err = b.history(ctx, topic, f.last); err != nil {
				// The channel closes; the client resumes from the last
				// event it received, and learns then if that has expired.
				return
			}
		}
		f.follow(ctx, s.live)
	}()
	return f.out, nil
}

// track counts a goroutine Close must wait for, unless the broker is closed.
func (b *RedisBroker) track() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return false
	}
	b.wg.Add(1)
	return true
}

// join adds s to the topic's reader, starting one if there is none.
func (b *RedisBroker) join(topic, key string, s *subscriber) (*streamReader, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, ErrClosed
	}
	r := b.readers[topic]
	if r == nil {
		ctx, cancel := context.WithCancel(b.base)
		r = &streamReader{
			topic:  topic,
			key:    key,
			ctx:    ctx,
			cancel: cancel,
			ready:  make(chan struct{}),
			subs:   map[*subscriber]struct{}{},
		}
		b.readers[topic] = r
		b.wg.Add(1)
		go b.read(r)
	}
	r.subs[s] = struct{}{}
	return r, nil
}

// leave removes s from r and stops r when nobody is left to read for.
func (b *RedisBroker) leave(r *streamReader, s *subscriber) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := r.subs[s]; ok {
		delete(r.subs, s)
		close(s.live)
	}
	if len(r.subs) == 0 {
		b.retire(r)
	}
}

// retire stops r; the caller holds b.mu. A later subscriber starts a new
// reader rather than waiting for this one to finish its current XREAD.
func (b *RedisBroker) retire(r *streamReader) {
	if b.readers[r.topic] == r {
		delete(b.readers, r.topic)
	}
	r.cancel()
}

// read follows r's stream from its end at start, handing each event to the
// subscribers present when it arrives.
func (b *RedisBroker) read(r *streamReader) {
	defer b.wg.Done()
	defer r.cancel()
	start, err := b.lastID(r.ctx, r.key)
	if err != nil {
		r.err = err
		b.mu.Lock()
		b.retire(r)
		b.mu.Unlock()
		close(r.ready)
		return
	}
	close(r.ready)
	cursor := start.String()
	failures := 0
	for r.ctx.Err() == nil {
		streams, err := b.client.XRead(r.ctx, &redis.XReadArgs{
			Streams: []string{r.key, cursor},
			Count:   readBatch,
			Block:   b.block,
		}).Result()
		if errors.Is(err, redis.Nil) {
			failures = 0
			continue
		}
		if err != nil {
			// The cursor stays put, so once Redis is back nothing still
			// retained is missed; until then subscribers just wait.
			failures++
			if !sleep(r.ctx, backoff(failures)) {
				return
			}
			continue
		}
		failures = 0
		var evs []Event
		for _, st := range streams {
			for _, m := range st.Messages {
				evs = append(evs, streamEvent(r.topic, m))
			}
		}
		if len(evs) == 0 {
			continue
		}
		cursor = evs[len(evs)-1].ID
		b.dispatch(r, evs)
	}
}

// dispatch offers evs to r's subscribers, dropping those that cannot keep up.
func (b *RedisBroker) dispatch(r *streamReader, evs []Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range r.subs {
		for _, ev := range evs {
			if !s.offer(ev) {
				delete(r.subs, s)
				close(s.live)
				break
			}
		}
	}
	if len(r.subs) == 0 {
		b.retire(r)
	}
}

// lastID returns the ID of the newest event in the stream, or 0-0.
func (b *RedisBroker) lastID(ctx context.Context, key string) (eventID, error) {
	msgs, err := b.client.XRevRangeN(ctx, key, "+", "-", 1).Result()
	if err != nil {
		return eventID{}, fmt.Errorf("events: read stream end: %w", err)
	}
	if len(msgs) == 0 {
		return eventID{}, nil
	}
	id, ok := parseID(msgs[0].ID)
	if !ok {
		return eventID{}, fmt.Errorf("events: unexpected stream ID %q", msgs[0].ID)
	}
	return id, nil
}

// historyScript reads a page of a stream together with what tells whether
// entries before it are gone, in one step, so that nothing is trimmed
// between the two: the newest ID publishScript trimmed, and the first
// entry and length for streams trimmed before it recorded that.
//
// KEYS: the stream, the newest trimmed ID. ARGV: the first ID wanted, the
// page size.
var historyScript = redis.NewScript(`
local trimmed = redis.call('GET', KEYS[2]) or ''
local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
first = first[1] and first[1][1] or ''
return {trimmed, first, redis.call('XLEN', KEYS[1]), redis.call('XRANGE', KEYS[1], ARGV[1], '+', 'COUNT', ARGV[2])}
`)

// history returns up to historyPage retained events after from, or
// ErrCursorExpired if events after from are no longer retained. The start
// is computed rather than written "(id" so that Redis before 6.2 works too.
func (b *RedisBroker) history(ctx context.Context, topic string, from eventID) ([]Event, error) {
	start, ok := from.next()
	if !ok {
		return nil, nil
	}
	reply, err := historyScript.Run(ctx, b.client, []string{b.key(topic), b.trimmedKey(topic)}, start.String(), historyPage).Slice()
	if err != nil {
		return nil, fmt.Errorf("events: read stream history: %w", err)
	}
	if len(reply) != 4 {
		return nil, fmt.Errorf("events: read stream history: unexpected reply of %d parts", len(reply))
	}
	trimmed, _ := reply[0].(string)
	first, _ := reply[1].(string)
	length, _ := reply[2].(int64)
	if b.expired(from, trimmed, first, length) {
		return nil, ErrCursorExpired
	}
	entries, _ := reply[3].([]any)
	evs := make([]Event, 0, len(entries))
	for _, e := range entries {
		m, err := scriptMessage(e)
		if err != nil {
			return nil, fmt.Errorf("events: read stream history: %w", err)
		}
		evs = append(evs, streamEvent(topic, m))
	}
	return evs, nil
}

// expired reports whether events after from were trimmed from the stream.
// With the newest trimmed ID recorded the answer is exact. A stream without
// one was never trimmed by this broker; one that has reached its retention
// may have been trimmed before it recorded the ID (MAXLEN ~ forgets what it
// removed), and there a cursor before the first entry counts as expired,
// erring towards a reload over a silent gap.
func (b *RedisBroker) expired(from eventID, trimmed, first string, length int64) bool {
	if id, ok := parseID(trimmed); ok {
		return from.compare(id) < 0
	}
	firstID, ok := parseID(first)
	if !ok || length < b.retain {
		return false
	}
	next, ok := from.next()
	return ok && firstID.compare(next) > 0
}

// scriptMessage decodes a stream entry as a script returns it:
// [id, [field, value, …]].
func scriptMessage(v any) (redis.XMessage, error) {
	parts, ok := v.([]any)
	if !ok || len(parts) != 2 {
		return redis.XMessage{}, fmt.Errorf("unexpected stream entry %T", v)
	}
	id, ok := parts[0].(string)
	if !ok {
		return redis.XMessage{}, fmt.Errorf("unexpected stream entry ID %T", parts[0])
	}
	fields, _ := parts[1].([]any)
	m := redis.XMessage{ID: id, Values: make(map[string]any, len(fields)/2)}
	for i := 0; i+1 < len(fields); i += 2 {
		if k, ok := fields[i].(string); ok {
			m.Values[k] = fields[i+1]
		}
	}
	return m, nil
}

// Ping checks that Redis answers.
func (b *RedisBroker) Ping(ctx context.Context) error {
	if b.isClosed() {
		return ErrClosed
	}
	return b.client.Ping(ctx).Err()
}

// Close ends every subscription and waits for the readers, each of which
// finishes its current XREAD first (at most the read block time).
func (b *RedisBroker) Close() error {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		for _, r := range b.readers {
			for s := range r.subs {
				delete(r.subs, s)
				close(s.live)
			}
			r.cancel()
		}
		clear(b.readers)
	}
	b.mu.Unlock()
	b.stop()
	b.wg.Wait()
	return nil
}

func backoff(failures int) time.Duration {
	d := 50 * time.Millisecond << min(failures, 6)
	return min(d, 2*time.Second)
}

// sleep waits for d and reports false if ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
