package graph

import (
	"context"

	"github.com/hmis-dev/hmis/graph/model"
	"github.com/hmis-dev/hmis/internal/admission"
	"github.com/hmis-dev/hmis/internal/events"
	"github.com/hmis-dev/hmis/internal/input"
)

// bedStatusChanged streams bed events, of one ward or all. The bed is
// loaded when the event is sent, and the stay through row scope.
func (r *subscriptionResolver) bedStatusChanged(ctx context.Context, wardID, after *string) (<-chan *model.BedStatusEvent, error) {
	if err := optionalID("wardId", wardID, input.Ward); err != nil {
		return nil, err
	}
	f := admission.BedFilter{WardID: wardID}
	return stream(ctx, r.Resolver, admission.BedFeed(r.Client), after, f.Matches,
		func(ev events.Event, b *admission.BedEvent) *model.BedStatusEvent {
			out := &model.BedStatusEvent{
				EventID: ev.ID, Type: model.BedEventType(ev.Type), OccurredAt: ev.Time,
				Status: b.Change.Status, Bed: b.Bed, Admission: b.Admission,
			}
			if b.Change.PreviousStatus != "" {
				previous := b.Change.PreviousStatus
				out.PreviousStatus = &previous
			}
			return out
		})
}
