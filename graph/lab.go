package graph

import (
	"context"

	"github.com/hmis-dev/hmis/graph/model"
	"github.com/hmis-dev/hmis/internal/events"
	"github.com/hmis-dev/hmis/internal/input"
	"github.com/hmis-dev/hmis/internal/lab"
)

// labFilter checks a lab subscription's arguments.
func labFilter(patientID, wardID *string) (lab.ResultFilter, error) {
	if err := optionalID("patientId", patientID, input.Patient); err != nil {
		return lab.ResultFilter{}, err
	}
	if err := optionalID("wardId", wardID, input.Ward); err != nil {
		return lab.ResultFilter{}, err
	}
	return lab.ResultFilter{PatientID: patientID, WardID: wardID}, nil
}

// labResultVerified streams released results: of one patient, of the
// patients admitted to one ward when released, or all the viewer may see.
func (r *subscriptionResolver) labResultVerified(ctx context.Context, patientID, wardID, after *string) (<-chan *model.LabResultEvent, error) {
	f, err := labFilter(patientID, wardID)
	if err != nil {
		return nil, err
	}
	return stream(ctx, r.Resolver, lab.ResultsFeed(r.Client), after, f.Matches,
		func(ev events.Event, rel *lab.Released) *model.LabResultEvent {
			return &model.LabResultEvent{
				EventID: ev.ID, Type: lab.LabResultEventType(ev.Type), OccurredAt: ev.Time,
				Patient: rel.Patient, Result: rel.Result, Item: rel.Item, Test: rel.Test, Ward: rel.Ward,
			}
		})
}

// criticalLabResult streams critical values with who must be told.
func (r *subscriptionResolver) criticalLabResult(ctx context.Context, wardID, after *string) (<-chan *model.CriticalLabResultEvent, error) {
	f, err := labFilter(nil, wardID)
	if err != nil {
		return nil, err
	}
	return stream(ctx, r.Resolver, lab.CriticalFeed(r.Client), after, f.Matches,
		func(ev events.Event, rel *lab.Released) *model.CriticalLabResultEvent {
			return &model.CriticalLabResultEvent{
				EventID: ev.ID, Type: lab.CriticalLabResultEventType(ev.Type), OccurredAt: ev.Time,
				Patient: rel.Patient, Result: rel.Result, Test: rel.Test, Ward: rel.Ward, Notify: rel.Notify,
			}
		})
}
