package graph

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/audit"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/events"
	"github.com/hmis-dev/hmis/internal/input"
)

// fanout is the process's subscription hub, made on first use.
type fanout struct {
	once sync.Once
	hub  *events.Hub
}

func (r *Resolver) hub() *events.Hub {
	r.fanout.once.Do(func() { r.fanout.hub = events.NewHub(r.Broker) })
	return r.fanout.hub
}

// stream subscribes to feed from after (nil: from now on) and streams the
// events the subscriber asked for (match) that its viewer may see, each
// made into what the subscription returns by item.
//
// What an event is about is loaded once per event for all the subscribers
// of this process with the same row scope (auth.SharedScope), through
// that scope, and shared between them; the policy's field checks still run
// for each subscriber as its response is written, and each subscriber's
// audit row names the patients the load read. A resuming subscriber loads
// for itself until it has caught up with the live stream.
//
// A stream ends with an error the client can act on, never silently: when
// the viewer's credential ends (logout, expiry, key revoked), when an
// event cannot be loaded, when the client falls too far behind, or when
// the broker drops the stream. The error carries resumeAfter, the last
// event consumed, so a client resubscribing with it misses nothing.
//
// On a WebSocket the credential's end is the connection's: a stream that
// finds it ended ends the connection, and a connection ended elsewhere (by
// another operation, or by its own watch at logout or expiry) ends every
// stream on it, each with its error before the socket closes.
//
// A stream keeps no goroutine of its own: the hub hands it events, and
// the end of its context or of its connection is a callback.
func stream[P, L, T any](ctx context.Context, r *Resolver, feed events.Feed[P, L], after *string,
	match func(P) bool, item func(events.Event, L) *T) (<-chan *T, error) {
	cursor := ""
	if after != nil {
		if !events.ValidID(*after) {
			return nil, apperr.BadInput("after", "is not an event ID")
		}
		cursor = *after
	}
	v := auth.FromContext(ctx)
	scopeKey, scope := auth.SharedScope(v)
	// The policy allowed the subscription when it began; a change to the
	// policy since must stop it as it stops a request.
	object := ""
	if fc := graphql.GetFieldContext(ctx); fc != nil {
		object = "Subscription." + fc.Field.Name
	}
	s := &subscriber[P, L, T]{
		ctx: ctx, auth: r.Auth, allows: r.Allows, object: object, conn: auth.ConnectionFrom(ctx), viewer: v,
		feed: feed, match: match, item: item,
		loadKey: feed.Name + "\x00" + scopeKey, scope: scope,
		out: make(chan *T, streamBuffer), push: pushFrom(ctx),
	}
	leave, err := r.hub().Subscribe(ctx, feed.Topic, cursor, s)
	if errors.Is(err, events.ErrCursorExpired) {
		return nil, cursorExpired()
	} else if err != nil {
		return nil, err
	}
	if s.push != nil {
		// Only a stream that began reports: a refused one is answered at once.
		s.push.Attach(s)
	}
	s.mu.Lock()
	s.leave = leave
	ended := s.ended
	s.mu.Unlock()
	if ended {
		leave()
		return s.out, nil
	}
	stopCtx := context.AfterFunc(ctx, func() { s.end("", "") })
	stopConn := s.conn.AfterEnd(func() { s.credentialEnded(s.conn.Err()) })
	s.mu.Lock()
	s.stopWatch = func() { stopCtx(); stopConn() }
	ended = s.ended
	s.mu.Unlock()
	if ended {
		stopCtx()
		stopConn()
	}
	return s.out, nil
}

// Push is how a transport serves a subscription without a goroutine of its
// own waiting on the stream's channel: the stream tells it when the
// channel will not block, and it then takes what the channel holds on a
// goroutine of its choosing. Attach is called once the stream exists,
// Ready after each item the stream queues and after it closes the channel,
// and End with the error the stream ends with, before the channel closes.
type Push interface {
	Attach(q Queue)
	Ready()
	End(err *gqlerror.Error)
}

// Queue is what a pushed stream holds, as its transport sees it. The items
// of one event are shared by every subscriber with the same row scope, so
// subscribers that also share the operation get identical responses: the
// transport may execute one and send its bytes to each (Drop) rather than
// execute each (Taken).
type Queue interface {
	// Head returns the delivery of the next item, nil if none is queued.
	Head() *events.Delivery
	// Drop consumes the next item, if its delivery is d, without a response
	// of its own.
	Drop(d *events.Delivery) bool
	// Taken tells the queue that a response consumed the next item.
	Taken()
}

type pushKey struct{}

// WithPush makes the subscription operation run under ctx report to p.
func WithPush(ctx context.Context, p Push) context.Context {
	return context.WithValue(ctx, pushKey{}, p)
}

func pushFrom(ctx context.Context) Push {
	p, _ := ctx.Value(pushKey{}).(Push)
	return p
}

// streamBuffer is how many events a subscriber's client may lag behind
// the stream before the stream ends with resumeAfter; the broker keeps
// what it has not received, so a short buffer costs a slow client only a
// resubscription.
const streamBuffer = 16

// sharedLoadTimeout bounds a load shared by many subscribers, which no
// single subscriber's going away may cancel.
const sharedLoadTimeout = 30 * time.Second

// subscriber is one stream as the hub sees it.
type subscriber[P, L, T any] struct {
	ctx     context.Context
	auth    *auth.Service
	allows  func(*auth.Viewer, string) bool // nil: not asked again
	object  string                          // the subscription's policy object
	conn    *auth.Connection
	viewer  *auth.Viewer
	feed    events.Feed[P, L]
	match   func(P) bool
	item    func(events.Event, L) *T
	loadKey string
	scope   *auth.Viewer
	push    Push // nil: the transport waits on out itself

	mu        sync.Mutex
	out       chan *T
	ended     bool
	leave     func()
	stopWatch func()
	// last is the last event consumed: delivered, or not the client's.
	last string
	// queued are the deliveries of the items in out, for Queue.
	queued []*events.Delivery
	// before[i%streamBuffer] is what last was before the i-th item sent
	// was queued, so that an end that takes queued items back resumes
	// before the first of them. Made with the first item, so that an idle
	// stream does not keep it.
	before []string
	sent   uint64
}

// loaded is a feed's load made into a stream's item, shared by every
// subscriber of one row scope.
type loaded[T any] struct {
	item     *T // nil: the scope may see none of the event
	patients []string
}

func (s *subscriber[P, L, T]) Deliver(d *events.Delivery) {
	s.mu.Lock()
	ended := s.ended
	s.mu.Unlock()
	if ended {
		return
	}
	ev := d.Event
	p, err := events.Shared(d, s.feed.Name+"\x00payload", func() (P, error) { return s.feed.Decode(ev) })
	if err != nil {
		s.end(apperr.Internal, "could not load an event; resubscribe with after")
		return
	}
	if !s.match(p) {
		s.skip(ev.ID)
		return
	}
	if s.allows != nil && s.object != "" && !s.allows(s.viewer, s.object) {
		s.end(apperr.Forbidden, "the access policy no longer allows "+s.object+" for your role")
		return
	}
	got, err := events.Shared(d, s.loadKey, func() (loaded[T], error) { return s.load(ev, p) })
	if err != nil {
		s.end(apperr.Internal, "could not load an event; resubscribe with after")
		return
	}
	if got.item == nil {
		s.skip(ev.ID)
		return
	}
	if err := s.recheck(d); err != nil {
		s.credentialEnded(err)
		return
	}
	// Noted when queued rather than when written: a row written before
	// this item goes out names its patients either way.
	audit.NotePatients(s.ctx, got.patients...)
	s.send(d, got.item)
}

// load runs the feed's load as the stand-in viewer of the row scope, on a
// context no subscriber owns, and notes which patients it read for every
// subscriber's audit row.
func (s *subscriber[P, L, T]) load(ev events.Event, p P) (loaded[T], error) {
	ctx, cancel := context.WithTimeout(auth.WithViewer(context.Background(), s.scope), sharedLoadTimeout)
	defer cancel()
	ctx, reads := audit.WithCollector(ctx)
	l, ok, err := s.feed.Load(ctx, ev, p)
	if err != nil || !ok {
		return loaded[T]{}, err
	}
	return loaded[T]{item: s.item(ev, l), patients: reads.Drain().PatientIDs}, nil
}

// recheck asks whether the credential still holds before an event goes
// out (auth.Service.Recheck), once per delivery for each credential.
func (s *subscriber[P, L, T]) recheck(d *events.Delivery) error {
	if err := s.conn.Err(); err != nil {
		return err
	}
	v := s.viewer
	if v == nil || v.System || (v.SessionID == "" && v.APIKeyID == "" && v.ExpiresAt.IsZero()) {
		return nil
	}
	key := fmt.Sprintf("credential\x00%s\x00%s\x00%d", v.SessionID, v.APIKeyID, v.ExpiresAt.UnixNano())
	_, err := events.Shared(d, key, func() (struct{}, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), sharedLoadTimeout)
		defer cancel()
		return struct{}{}, s.auth.StillValid(ctx, v)
	})
	if apperr.CodeOf(err) == apperr.Unauthenticated {
		s.conn.End(err)
	}
	return err
}

func (s *subscriber[P, L, T]) Head() *events.Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queued) == 0 {
		return nil
	}
	return s.queued[0]
}

func (s *subscriber[P, L, T]) Drop(d *events.Delivery) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queued) == 0 || s.queued[0] != d {
		return false
	}
	select {
	case <-s.out:
		s.queued = s.queued[1:]
		return true
	default:
		return false
	}
}

func (s *subscriber[P, L, T]) Taken() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queued) > 0 {
		s.queued = s.queued[1:]
	}
}

func (s *subscriber[P, L, T]) Interrupted() {
	s.end(apperr.Internal, "the event stream was interrupted; resubscribe with after")
}

func (s *subscriber[P, L, T]) credentialEnded(err error) {
	if apperr.CodeOf(err) != apperr.Unauthenticated {
		// The cache did not answer: no internals in the message.
		s.end(apperr.Internal, "could not check the credential; resubscribe with after")
		return
	}
	s.end(apperr.Unauthenticated, err.Error())
}

// skip consumes an event that is not the client's.
func (s *subscriber[P, L, T]) skip(id string) {
	s.mu.Lock()
	if !s.ended {
		s.last = id
	}
	s.mu.Unlock()
}

func (s *subscriber[P, L, T]) send(d *events.Delivery, item *T) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return
	}
	select {
	case s.out <- item:
		if s.before == nil {
			s.before = make([]string, streamBuffer)
		}
		s.before[s.sent%streamBuffer] = s.last
		s.sent++
		s.last = d.Event.ID
		if s.push != nil {
			s.queued = append(s.queued, d)
			s.push.Ready()
		}
	default:
		s.endLocked(apperr.Internal, "the client fell behind the event stream; resubscribe with after")
	}
}

// end ends the stream with an error of code, or silently with code ""
// (the client went away).
func (s *subscriber[P, L, T]) end(code apperr.Code, message string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.endLocked(code, message)
}

func (s *subscriber[P, L, T]) endLocked(code apperr.Code, message string) {
	if s.ended {
		return
	}
	s.ended = true
	// Items still queued were not delivered, so not consumed: resumeAfter
	// goes back to before the first of them, and a resubscribing client
	// gets them.
	taken := 0
	for drained := false; !drained; {
		select {
		case <-s.out:
			taken++
		default:
			drained = true
		}
	}
	s.queued = nil
	resume := s.last
	if taken > 0 {
		resume = s.before[(s.sent-uint64(taken))%streamBuffer]
	}
	if code != "" && s.ctx.Err() == nil {
		endStream(s.ctx, code, message, resume)
	}
	close(s.out)
	if s.push != nil {
		s.push.Ready()
	}
	if s.stopWatch != nil {
		s.stopWatch()
	}
	if s.leave != nil {
		s.leave()
	}
}

func endStream(ctx context.Context, code apperr.Code, message, resumeAfter string) {
	ext := map[string]any{"code": string(code)}
	if resumeAfter != "" {
		ext["resumeAfter"] = resumeAfter
		message = fmt.Sprintf("%s: %q", message, resumeAfter)
	}
	err := &gqlerror.Error{Message: message, Extensions: ext}
	if p := pushFrom(ctx); p != nil {
		p.End(err)
		return
	}
	transport.AddSubscriptionError(ctx, err)
}

// optionalID refuses a filter argument that is given but is not an ID of
// the kind it names, before anything is subscribed.
func optionalID(arg string, id *string, t input.IDType) error {
	if id == nil {
		return nil
	}
	return input.ID(arg, *id, t)
}

// cursorExpired tells a client whose after is older than the retained
// events what to do: a retry with the same cursor fails the same way.
func cursorExpired() error {
	return &gqlerror.Error{
		Message:    "after: events since this eventId are no longer retained; reload the data this subscription keeps current, then subscribe again without after",
		Extensions: map[string]any{"code": CursorExpired, "field": "after"},
	}
}

// CursorExpired is the extensions.code of a subscription whose after is
// older than the events retained.
const CursorExpired = "CURSOR_EXPIRED"
