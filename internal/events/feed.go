package events

import "context"

// Feed is one kind of subscription to a topic, defined by the domain that
// publishes the topic: how an event's payload decodes, and how what the
// event is about is loaded as a viewer may see it. Which events a
// subscriber asked for is the domain's too, as a filter over the payload.
type Feed[P, L any] struct {
	// Name tells feeds apart; a load shared between subscribers is keyed
	// by it.
	Name  string
	Topic string
	// Decode reads an event's payload.
	Decode func(Event) (P, error)
	// Load loads what the event is about through the row scope of the
	// viewer of ctx; ok is false when that viewer may see none of it.
	// Everything it returns must be safe to share between subscribers
	// with the same row scope, and be read-only from then on.
	Load func(ctx context.Context, ev Event, p P) (l L, ok bool, err error)
}
