package graph

import (
	"context"
	"encoding/json"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/bed"
	"github.com/hmis-dev/hmis/graph/model"
	"github.com/hmis-dev/hmis/internal/admission"
	"github.com/hmis-dev/hmis/internal/events"
)

// bedStatusChanged streams bed events, of one ward or all. The bed is
// loaded when the event is sent, and the stay through row scope.
func (r *subscriptionResolver) bedStatusChanged(ctx context.Context, wardID, after *string) (<-chan *model.BedStatusEvent, error) {
	if err := optionalID("wardId", wardID, "wrd", "a ward"); err != nil {
		return nil, err
	}
	src, err := r.subscribe(ctx, admission.Topic, after)
	if err != nil {
		return nil, err
	}
	return stream(ctx, r.Auth, src, func(ev events.Event) (*model.BedStatusEvent, bool, error) {
		var change admission.Change
		if err := json.Unmarshal(ev.Payload, &change); err != nil {
			return nil, false, err
		}
		if wardID != nil && change.WardID != *wardID {
			return nil, false, nil
		}
		b, err := r.Client.Bed.Query().Where(bed.ID(change.BedID)).WithWard().Only(ctx)
		if ent.IsNotFound(err) {
			return nil, false, nil
		} else if err != nil {
			return nil, false, err
		}
		out := &model.BedStatusEvent{
			EventID: ev.ID, Type: model.BedEventType(ev.Type), OccurredAt: ev.Time, Status: change.Status, Bed: b,
		}
		if change.PreviousStatus != "" {
			out.PreviousStatus = &change.PreviousStatus
		}
		if change.AdmissionID != "" {
			a, err := r.Client.Admission.Get(ctx, change.AdmissionID)
			switch {
			case ent.IsNotFound(err): // not this viewer's to see; the bed event still is
			case err != nil:
				return nil, false, err
			default:
				out.Admission = a
			}
		}
		return out, true, nil
	}), nil
}
