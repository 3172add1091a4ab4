package admission

import (
	"context"
	"encoding/json"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/bed"
	"github.com/hmis-dev/hmis/internal/events"
)

// BedFilter is what a bed subscription follows: one ward's beds, or every
// bed.
type BedFilter struct {
	WardID *string
}

// Matches reports whether an event with payload c is one f follows.
func (f BedFilter) Matches(c Change) bool { return f.WardID == nil || c.WardID == *f.WardID }

// BedEvent is what a bed event is about, as one viewer may see it.
type BedEvent struct {
	Change Change
	// Bed is the bed as it is now, with its ward.
	Bed *ent.Bed
	// Admission is the stay occupying the bed after the event; nil when
	// there is none or the viewer may not see it (the bed event itself
	// they may).
	Admission *ent.Admission
}

// BedFeed is the feed of bed status changes (Topic).
func BedFeed(client *ent.Client) events.Feed[Change, *BedEvent] {
	return events.Feed[Change, *BedEvent]{
		Name: "admission.beds", Topic: Topic,
		Decode: func(ev events.Event) (Change, error) {
			var c Change
			err := json.Unmarshal(ev.Payload, &c)
			return c, err
		},
		Load: func(ctx context.Context, _ events.Event, c Change) (*BedEvent, bool, error) {
			return loadBedEvent(ctx, client, c)
		},
	}
}

// loadBedEvent loads the bed when the event is sent, and the stay through
// row scope.
func loadBedEvent(ctx context.Context, client *ent.Client, c Change) (*BedEvent, bool, error) {
	b, err := client.Bed.Query().Where(bed.ID(c.BedID)).WithWard().Only(ctx)
	if ent.IsNotFound(err) {
		return nil, false, nil
	} else if err != nil {
		return nil, false, err
	}
	out := &BedEvent{Change: c, Bed: b}
	if c.AdmissionID != "" {
		a, err := client.Admission.Get(ctx, c.AdmissionID)
		switch {
		case ent.IsNotFound(err): // not this viewer's to see; the bed event still is
		case err != nil:
			return nil, false, err
		default:
			out.Admission = a
		}
	}
	return out, true, nil
}
