package graph

import (
	"context"
	"errors"
	"fmt"

	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/events"
	"github.com/hmis-dev/hmis/internal/globalid"
)

// stream forwards broker events to one subscriber, each converted by load,
// which loads what the event is about through row scope and says whether
// the viewer may see it. A stream ends with an error the client can act on,
// never silently: when the viewer's credential ends (logout, expiry, key
// revoked), when an event cannot be loaded, or when the broker drops the
// stream. The error carries resumeAfter, the last event consumed, so a
// client resubscribing with it misses nothing.
//
// On a WebSocket the credential's end is the connection's: a stream that
// finds it ended ends the connection, and a connection ended elsewhere (by
// another operation, or by its own watch at logout or expiry) ends every
// stream on it, each with its error before the socket closes.
func stream[T any](ctx context.Context, a *auth.Service, src <-chan events.Event,
	load func(events.Event) (item *T, visible bool, err error)) <-chan *T {
	out := make(chan *T)
	conn := auth.ConnectionFrom(ctx)
	go func() {
		defer close(out)
		last := ""
		credentialEnded := func(err error) {
			if apperr.CodeOf(err) != apperr.Unauthenticated {
				// The cache did not answer: no internals in the message.
				endStream(ctx, apperr.Internal, "could not check the credential; resubscribe with after", last)
				return
			}
			endStream(ctx, apperr.Unauthenticated, err.Error(), last)
		}
		for {
			var ev events.Event
			select {
			case e, ok := <-src:
				if !ok {
					if ctx.Err() == nil {
						endStream(ctx, apperr.Internal, "the event stream was interrupted; resubscribe with after", last)
					}
					return
				}
				ev = e
			case <-conn.Ended():
				credentialEnded(conn.Err())
				return
			}
			if err := a.Recheck(ctx); err != nil {
				credentialEnded(err)
				return
			}
			item, visible, err := load(ev)
			if err != nil {
				endStream(ctx, apperr.Internal, "could not load an event; resubscribe with after", last)
				return
			}
			if visible {
				select {
				case out <- item:
				case <-conn.Ended():
					// Not delivered, so not consumed: resumeAfter stays
					// before it and a resubscribing client gets it.
					credentialEnded(conn.Err())
					return
				case <-ctx.Done():
					return
				}
			}
			last = ev.ID
		}
	}()
	return out
}

func endStream(ctx context.Context, code apperr.Code, message, resumeAfter string) {
	ext := map[string]any{"code": string(code)}
	if resumeAfter != "" {
		ext["resumeAfter"] = resumeAfter
		message = fmt.Sprintf("%s: %q", message, resumeAfter)
	}
	transport.AddSubscriptionError(ctx, &gqlerror.Error{Message: message, Extensions: ext})
}

// optionalID refuses a filter argument that is given but is not an ID of
// the kind it names, before anything is subscribed.
func optionalID(arg string, id *string, prefix, what string) error {
	if id != nil && !globalid.Valid(*id, prefix) {
		return apperr.BadInput(arg, "is not %s ID", what)
	}
	return nil
}

// subscribe opens topic after the event a resubscribing client saw last,
// or live from now without one.
func (r *subscriptionResolver) subscribe(ctx context.Context, topic string, after *string) (<-chan events.Event, error) {
	cursor := ""
	if after != nil {
		if !events.ValidID(*after) {
			return nil, apperr.BadInput("after", "is not an event ID")
		}
		cursor = *after
	}
	ch, err := r.Broker.Subscribe(ctx, topic, cursor)
	if errors.Is(err, events.ErrCursorExpired) {
		// Events after the cursor are gone for good: a retry with it fails
		// the same way, so the client is told what to do instead.
		return nil, &gqlerror.Error{
			Message:    "after: events since this eventId are no longer retained; reload the data this subscription keeps current, then subscribe again without after",
			Extensions: map[string]any{"code": CursorExpired, "field": "after"},
		}
	}
	return ch, err
}

// CursorExpired is the extensions.code of a subscription whose after is
// older than the events retained.
const CursorExpired = "CURSOR_EXPIRED"
